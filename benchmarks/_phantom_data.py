"""Phantom inputs of ``benchmarks/data_pipeline.py``, made in a temp folder.

Raw BTCV volumes as converter cases, converted AbdomenCT-1K slices for the
configs' training pipelines, and the encoded slices of one volume for the
storage formats. Imported as a sibling module by the benchmark script.
"""
import os.path as osp


def btcv_case_specs(tmp, cases, shape):
    """Write ``cases`` raw BTCV phantoms of ``shape`` under ``tmp/raw``;
    returns their converter ``CaseSpec`` list (image + label)."""
    from medssl.datasets.converters import CaseSpec
    from medssl.datasets.phantom_writer import write_phantom_dataset
    paths = write_phantom_dataset(osp.join(tmp, 'raw'), 'btcv',
                                  num_cases=cases, seed=0, shape=shape)
    return [CaseSpec(osp.basename(p)[:-7], p, q)
            for p, q in zip(paths[::2], paths[1::2])]


def abdomen1k_slices(tmp, cases):
    """Write ``cases`` AbdomenCT-1K phantoms and convert them to slices;
    returns the slice root."""
    from medssl.datasets.converters import convert_abdomen1k
    from medssl.datasets.phantom_writer import write_phantom_dataset
    raw = osp.join(tmp, 'abdomen1k_raw')
    write_phantom_dataset(raw, 'abdomen1k', num_cases=cases, seed=0,
                          shape=(128, 128, 16))
    out = osp.join(tmp, 'abdomen1k_slices')
    convert_abdomen1k(raw, out, progress=False)
    return out


def encoded_slices(n):
    """The ``n`` uint16-encoded slices of one nominal 512x512 phantom."""
    from medssl.datasets.converters.ct_io import canonical_to_slice, encode_hu
    from medssl.datasets.phantoms import make_phantom_case
    case = make_phantom_case(1, 'btcv', shape=(512, 512, n), vary=False)
    return [encode_hu(canonical_to_slice(case['hu'], z)) for z in range(n)]

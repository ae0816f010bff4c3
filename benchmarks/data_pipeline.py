"""CT data-path benchmark: converter throughput, pipeline speed, PNG vs npy.

1. Converter throughput relative to a raw baseline on the same phantom
   volumes: baseline = ``nib.load`` + ``get_fdata`` + ``np.save`` of the
   uint16-encoded volume (image and label); converter = the real
   ``convert_cases`` (validation, per-slice image files, uint8 label PNGs,
   meta JSON, atomic writes), one process, for each image format: ``npy``
   (uint16 .npy, the default) and ``png`` (16-bit PNG, ``--img-format
   png``). Ratio = baseline time / converter time (goal >= 0.8).
2. Pretraining pipeline on a 512x512 slice stored in each format, built
   from the registry, one worker: LoadCTSlice + HUWindow + MultiView(2 x
   [RandomResizedCrop, RandomFlip, RandomHUContrast, RandomGaussianNoise,
   RandomGaussianBlur, RandomGamma]); slices/s (each slice gives two views).
3. Slice storage: 16-bit PNG (the converters' level-1 compression and
   cv2's default level 3) vs ``.npy`` (uint16): bytes per slice, read
   slices/s (cv2.imread vs np.load) and write slices/s.

Usage::

    python benchmarks/data_pipeline.py [--cases 3] [--shape 512 512 24]
        [--out benchmarks/results/data_pipeline.json]
"""
import argparse
import json
import os
import os.path as osp
import platform
import shutil
import sys
import tempfile
import time

import cv2
import nibabel as nib
import numpy as np

from medssl.datasets.converters import (CaseSpec, ConvertOptions,
                                        convert_cases, write_npy, write_png)
from medssl.datasets.converters.ct_io import canonical_to_slice, encode_hu
from medssl.datasets.phantoms import write_phantom_dataset


def _timeit(fn, repeat=1):
    best = float('inf')
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


#: image formats, the default first
FORMATS = ('npy', 'png')


def bench_converter(tmp, cases, shape, repeat):
    raw = osp.join(tmp, 'raw')
    paths = write_phantom_dataset(raw, 'btcv', num_cases=cases, seed=0,
                                  shape=shape)
    specs = [CaseSpec(osp.basename(p)[:-7], p, q)
             for p, q in zip(paths[::2], paths[1::2])]
    base_dir = osp.join(tmp, 'baseline')

    def baseline():
        shutil.rmtree(base_dir, ignore_errors=True)
        os.makedirs(base_dir)
        for s in specs:
            for path in (s.image, s.label):
                vol = nib.load(path).get_fdata(dtype=np.float32)
                np.save(osp.join(base_dir, osp.basename(path) + '.npy'),
                        encode_hu(vol))

    n_slices = [0]

    def convert(threads, img_format):
        out = osp.join(tmp, 'conv')
        shutil.rmtree(out, ignore_errors=True)
        opts = ConvertOptions(label_ids=range(14), require_label=True,
                              threads=threads, img_format=img_format)
        done, _ = convert_cases(specs, out, opts, progress=False)
        n_slices[0] = sum(r['slices'] for r in done)

    threads = 2
    t_base = _timeit(baseline, repeat)
    res = dict(cases=cases, shape=list(shape), baseline_s=t_base,
               threads=threads, formats={})
    for fmt in FORMATS:
        t_conv = _timeit(lambda: convert(1, fmt), repeat)
        t_conv_mt = _timeit(lambda: convert(threads, fmt), repeat)
        res['formats'][fmt] = dict(
            converter_s=t_conv,
            converter_slices_per_s=n_slices[0] / t_conv,
            throughput_ratio=t_base / t_conv,
            converter_threads_s=t_conv_mt,
            throughput_ratio_threads=t_base / t_conv_mt)
    res['slices'] = n_slices[0]
    return res


def bench_pipeline(tmp, iters, img_format):
    from medssl.registry import TRANSFORMS
    from mmengine.dataset import Compose
    path = osp.join(tmp, f'slice_512.{img_format}')
    from medssl.datasets.phantoms import make_phantom_case
    case = make_phantom_case(0, 'btcv', shape=(512, 512, 4), vary=False)
    # written exactly like the converter writes it
    (write_npy if img_format == 'npy' else write_png)(
        path, encode_hu(canonical_to_slice(case['hu'], 1)))
    view = [
        dict(type='RandomResizedCrop', size=224, scale=(0.2, 1.0)),
        dict(type='mmcv.RandomFlip', prob=0.5, direction='horizontal'),
        dict(type='RandomHUContrast', contrast_range=(0.8, 1.2),
             center=0.5, prob=0.8),
        dict(type='RandomGaussianNoise', std_range=(0, 0.03), prob=0.5),
        dict(type='RandomGaussianBlur', sigma_range=(0.1, 1.5), prob=0.5),
        dict(type='RandomGamma', gamma_range=(0.7, 1.5), prob=0.5),
    ]
    pipeline = Compose([
        TRANSFORMS.build(t) for t in [
            dict(type='LoadCTSlice'),
            dict(type='HUWindow', windows=[(-175, 250)]),
            dict(type='MultiView', num_views=[2], transforms=[view]),
        ]
    ])
    out = pipeline(dict(img_path=path))
    views = out['img']
    assert len(views) == 2 and views[0].dtype == np.float32, views
    np.random.seed(0)
    t0 = time.perf_counter()
    for _ in range(iters):
        pipeline(dict(img_path=path))
    dt = time.perf_counter() - t0
    return dict(
        img_format=img_format,
        slice_shape=[512, 512],
        view_shape=list(views[0].shape),
        iters=iters,
        slices_per_s_per_worker=iters / dt,
        ms_per_slice=1000 * dt / iters)


def bench_storage(tmp, n):
    from medssl.datasets.phantoms import make_phantom_case
    case = make_phantom_case(1, 'btcv', shape=(512, 512, n), vary=False)
    slices = [encode_hu(canonical_to_slice(case['hu'], z)) for z in range(n)]
    res = {}
    from medssl.datasets.converters import PNG_PARAMS
    params = dict(png1=PNG_PARAMS, png3=[cv2.IMWRITE_PNG_COMPRESSION, 3])
    for fmt in ('png1', 'png3', 'npy'):
        d = osp.join(tmp, f'store_{fmt}')
        os.makedirs(d)
        names = [osp.join(d, f's{z:04d}.' + fmt[:3]) for z in range(n)]
        t0 = time.perf_counter()
        for arr, p in zip(slices, names):
            if fmt == 'npy':
                np.save(p, arr)
            else:
                cv2.imwrite(p, arr, params[fmt])
        t_write = time.perf_counter() - t0
        size = sum(os.path.getsize(p) for p in names) / n
        reader = np.load if fmt == 'npy' else \
            (lambda p: cv2.imread(p, cv2.IMREAD_UNCHANGED))
        for p, arr in zip(names[:2], slices):
            assert np.array_equal(reader(p), arr)
        t0 = time.perf_counter()
        for _ in range(3):
            for p in names:
                reader(p)
        t_read = (time.perf_counter() - t0) / 3
        res[fmt] = dict(
            bytes_per_slice=size,
            read_slices_per_s=n / t_read,
            write_slices_per_s=n / t_write)
    return res


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--cases', type=int, default=3)
    p.add_argument('--shape', type=int, nargs=3, default=[512, 512, 24])
    p.add_argument('--repeat', type=int, default=2)
    p.add_argument('--iters', type=int, default=100)
    p.add_argument('--storage-slices', type=int, default=32)
    p.add_argument('--out', default='benchmarks/results/data_pipeline.json')
    args = p.parse_args(argv)
    from medssl.utils import register_all_modules
    register_all_modules()
    cv2.setNumThreads(1)
    tmp = tempfile.mkdtemp(prefix='medssl_bench_')
    t_start = time.perf_counter()
    try:
        conv = bench_converter(tmp, args.cases, args.shape, args.repeat)
        pipe = {fmt: bench_pipeline(tmp, args.iters, fmt) for fmt in FORMATS}
        store = bench_storage(tmp, args.storage_slices)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = dict(
        converter=conv,
        pipeline=pipe,
        storage=store,
        env=dict(python=sys.version.split()[0], platform=platform.platform(),
                 cpus=os.cpu_count(), cv2=cv2.__version__,
                 nibabel=nib.__version__),
        total_s=time.perf_counter() - t_start)

    rows = [('raw nib load + np.save',
             f"{conv['cases']} cases {tuple(conv['shape'])}, "
             f"{conv['slices']} slices, 1 thread",
             f"{conv['baseline_s']:.2f} s")]
    for fmt in FORMATS:
        c = conv['formats'][fmt]
        rows += [
            (f'converter {fmt}, 1 thread', 'same volumes',
             f"{c['converter_s']:.2f} s "
             f"({c['converter_slices_per_s']:.0f} slices/s)"),
            (f"converter {fmt}, threads={conv['threads']}", 'same volumes',
             f"{c['converter_threads_s']:.2f} s"),
            (f'throughput ratio {fmt}', 'baseline / converter (goal >= 0.8)',
             f"{c['throughput_ratio']:.2f} (1 thread), "
             f"{c['throughput_ratio_threads']:.2f} "
             f"({conv['threads']} threads)"),
        ]
    for fmt in FORMATS:
        rows.append(
            (f'pipeline {fmt} (1 worker)',
             'LoadCTSlice+HUWindow+2 aug views of 512^2',
             f"{pipe[fmt]['slices_per_s_per_worker']:.0f} slices/s "
             f"({pipe[fmt]['ms_per_slice']:.1f} ms)"))
    for fmt, name in (('png1', '16-bit PNG lvl 1 RLE (--img-format png)'),
                      ('png3', '16-bit PNG lvl 3 (cv2 default)'),
                      ('npy', '.npy uint16 (default)')):
        s = store[fmt]
        rows.append((name, f"{s['bytes_per_slice'] / 1024:.0f} KiB/slice",
                     f"read {s['read_slices_per_s']:.0f}/s, write "
                     f"{s['write_slices_per_s']:.0f}/s"))
    w = [max(len(r[i]) for r in rows) for i in range(3)]
    line = '+'.join('-' * (x + 2) for x in w)
    print(line)
    for r in rows:
        print(' | '.join(c.ljust(x) for c, x in zip(r, w)))
    print(line)
    print(f"total {result['total_s']:.1f} s")
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=2, sort_keys=True)
    print(f'wrote {args.out}')
    return result


if __name__ == '__main__':
    main()

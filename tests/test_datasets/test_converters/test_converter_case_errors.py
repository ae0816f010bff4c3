"""Every per-case failure of a converter -- a zero, NaN or degenerate
sform, an orientation/SVD error -- is a ConversionError naming the case and
the file, and ``--on-error skip`` skips it; non-HU voxels get a warning
naming the file."""
import glob
import json
import os.path as osp

import nibabel as nib
import numpy as np
import pytest

from medssl.datasets.converters import ConversionError, convert_abdomen1k
from medssl.datasets.phantom_writer import write_phantom_dataset

ROOT = osp.join(osp.dirname(__file__), '..', '..', '..')


def _cli():
    from tool_scripts import load_script
    return load_script('tools/dataset_converters/abdomen1k.py').main


SFORMS = {
    'zero': np.zeros((3, 4)),
    'nan': np.full((3, 4), np.nan),
    'collinear': np.array([[0.8, 0., 0., 0.], [0.8, 0., 0., 0.],
                           [0., 0., 2.5, 0.]]),
    'inf': np.diag([np.inf, 1., 1., 1.])[:3],
}


def break_sform(path, kind):
    """Rewrite ``path`` with a broken sform (qform off), as a scanner
    export with a bad header would have."""
    img = nib.load(path)
    hdr = img.header.copy()
    hdr['srow_x'], hdr['srow_y'], hdr['srow_z'] = SFORMS[kind]
    hdr['sform_code'], hdr['qform_code'] = 1, 0
    nib.save(nib.Nifti1Image(img.dataobj.get_unscaled(), None, hdr), path)


@pytest.fixture
def raw(tmp_path):
    root = str(tmp_path / 'raw')
    write_phantom_dataset(root, 'abdomen1k', num_cases=3, shape=(32, 32, 6))
    return root


def _image(raw, case):
    return glob.glob(osp.join(raw, '*', f'{case}_0000.nii.gz'))[0]


@pytest.mark.parametrize('kind', sorted(SFORMS))
def test_broken_sform_fails_then_is_skipped(raw, tmp_path, capsys, kind):
    bad = _image(raw, 'Case_00002')
    break_sform(bad, kind)
    out = str(tmp_path / 'out')
    main = _cli()
    assert main([raw, out]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f'ConversionError: case Case_00002: {bad} has a ')
    assert len(err.strip().splitlines()) == 1
    assert main([raw, out, '--on-error', 'skip']) == 0
    summary = json.load(open(osp.join(out, 'summary.json')))
    assert summary['cases'] == ['Case_00001', 'Case_00003']
    assert [s['case'] for s in summary['skipped']] == ['Case_00002']
    assert bad in summary['skipped'][0]['reason']
    assert not glob.glob(osp.join(out, '*', 'Case_00002*'))


def test_broken_label_sform_names_the_label(raw, tmp_path):
    label = osp.join(raw, 'Mask', 'Case_00003.nii.gz')
    break_sform(label, 'nan')
    with pytest.raises(ConversionError, match=f'case Case_00003: {label} '
                       'has a non-finite affine'):
        convert_abdomen1k(raw, str(tmp_path / 'out'), progress=False)


def test_any_other_case_failure_is_a_conversion_error(raw, tmp_path,
                                                      monkeypatch):
    """An orientation/SVD error the checks do not foresee still names the
    case and file, and is skipped with on_error='skip'."""
    from medssl.datasets.converters import volume
    real = volume.to_canonical
    bad = _image(raw, 'Case_00001')

    def fails_once(data, affine):
        if fails_once.armed:
            fails_once.armed = False
            raise np.linalg.LinAlgError('SVD did not converge')
        return real(data, affine)

    fails_once.armed = True
    monkeypatch.setattr(volume, 'to_canonical', fails_once)
    with pytest.raises(ConversionError,
                       match=f'case Case_00001: cannot reorient {bad} to '
                       r'RAS\+ \(LinAlgError: SVD did not converge\)'):
        convert_abdomen1k(raw, str(tmp_path / 'a'), progress=False)
    fails_once.armed = True
    summary = convert_abdomen1k(raw, str(tmp_path / 'b'), progress=False,
                                on_error='skip')
    assert [s['case'] for s in summary['skipped']] == ['Case_00001']
    assert 'LinAlgError' in summary['skipped'][0]['reason']
    assert summary['cases'] == ['Case_00002', 'Case_00003']


def test_non_hu_images_get_a_warning_naming_the_file(raw, tmp_path, capsys):
    """An 8-bit export (0..255) and a volume without negative values are
    converted (they may be intended) but each is named in a warning."""
    u8 = _image(raw, 'Case_00001')
    img = nib.load(u8)
    grey = np.clip((img.get_fdata() + 1000) / 8, 0, 255).astype(np.uint8)
    nib.save(nib.Nifti1Image(grey, img.affine), u8)
    shifted = _image(raw, 'Case_00002')
    img = nib.load(shifted)  # HU + 1024 stored without the intercept
    stored = np.clip(img.get_fdata(), -1024, None) + 1024
    nib.save(nib.Nifti1Image(stored.astype(np.int16), img.affine), shifted)
    summary = convert_abdomen1k(raw, str(tmp_path / 'out'), progress=False)
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines()
                if line.startswith('warning: ')]
    assert len(warnings) == 2, err
    assert warnings[0].startswith(f'warning: case Case_00001: image {u8}: '
                                  'uint8 voxels (values 0..')
    assert 'cannot be CT numbers in HU' in warnings[0]
    assert warnings[1].startswith(f'warning: case Case_00002: image '
                                  f'{shifted}: no voxel below 0 HU')
    assert summary['num_cases'] == 3
    # a normal CT volume is not warned about
    assert 'Case_00003' not in err

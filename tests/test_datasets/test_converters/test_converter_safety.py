"""Converters never touch user files, take only *.nii / *.nii.gz, and skip
(with a warning, recorded) a case without any body slice."""
import json
import os
import os.path as osp
import shutil

import nibabel as nib
import numpy as np
import pytest

from medssl.datasets.converters import convert_abdomen1k, convert_btcv
from medssl.datasets.phantom_writer import write_phantom_dataset


def _split(tmp_path):
    path = str(tmp_path / 'split.json')
    with open(path, 'w') as f:
        json.dump(dict(train=['img0001'], val=['img0002']), f)
    return path


def test_user_files_like_old_temporaries_survive(tmp_path):
    raw, out = str(tmp_path / 'raw'), str(tmp_path / 'out')
    write_phantom_dataset(raw, 'btcv', num_cases=2, shape=(32, 32, 6))
    user = {osp.join(out, 'img_dir', '.img0001_0000.npy.123.tmp'): b'mine',
            osp.join(out, 'meta', '.notes.1.tmp'): b'notes',
            osp.join(out, '.summary.json.9.tmp'): b'keep'}
    for path, data in user.items():
        os.makedirs(osp.dirname(path), exist_ok=True)
        open(path, 'wb').write(data)
    convert_btcv(raw, out, split_file=_split(tmp_path), progress=False)
    convert_btcv(raw, out, split_file=_split(tmp_path), progress=False)
    for path, data in user.items():
        assert open(path, 'rb').read() == data
    # and the converter's own private temp folders are gone
    assert not [d for d, _, _ in os.walk(out) if '.medssl-tmp' in d]


def test_stray_backup_file_is_not_a_case(tmp_path, recwarn):
    raw, out = str(tmp_path / 'raw'), str(tmp_path / 'out')
    write_phantom_dataset(raw, 'btcv', num_cases=2, shape=(32, 32, 6))
    img = osp.join(raw, 'RawData', 'Training', 'img')
    shutil.copy(osp.join(img, 'img0002.nii.gz'),
                osp.join(img, 'img0003.nii.gz.bak'))
    open(osp.join(img, 'img0004.nii.gz.partial'), 'wb').write(b'junk')
    summary = convert_btcv(raw, out, split_file=_split(tmp_path),
                           progress=False)
    assert summary['cases'] == ['img0001', 'img0002']
    assert summary['skipped'] == []
    msgs = [str(w.message) for w in recwarn]
    assert any('ignored 2 file(s)' in m and 'img0003.nii.gz.bak' in m
               for m in msgs), msgs


def test_all_air_case_is_skipped_and_recorded(tmp_path, capsys):
    raw, out = str(tmp_path / 'raw'), str(tmp_path / 'out')
    write_phantom_dataset(raw, 'abdomen1k', num_cases=2, shape=(32, 32, 6))
    air = osp.join(raw, 'AbdomenCT-1K-ImagePart1', 'Case_00009_0000.nii.gz')
    nib.save(nib.Nifti1Image(np.full((32, 32, 6), -1024, np.int16),
                             np.diag([0.8, 0.8, 2.5, 1])), air)
    summary = convert_abdomen1k(raw, out, progress=False)
    err = capsys.readouterr().err
    assert 'warning: case Case_00009: no slice with body' in err
    assert air in err
    assert summary['cases'] == ['Case_00001', 'Case_00002']
    assert [s['case'] for s in summary['skipped']] == ['Case_00009']
    assert 'skipped, not a training case' in summary['skipped'][0]['reason']
    for name in os.listdir(osp.join(out, 'splits')):
        text = open(osp.join(out, 'splits', name)).read()
        assert 'Case_00009' not in text, name
    assert not [f for f in os.listdir(osp.join(out, 'img_dir'))
                if f.startswith('Case_00009')]
    assert not osp.exists(osp.join(out, 'meta', 'Case_00009.json'))
    # also with on_error='fail': an empty case is not an error
    again = convert_abdomen1k(raw, out, progress=False, on_error='fail')
    assert again == summary


def test_only_air_cases_is_an_error_naming_them(tmp_path):
    raw = str(tmp_path / 'raw')
    os.makedirs(osp.join(raw, 'AbdomenCT-1K-ImagePart1'))
    nib.save(nib.Nifti1Image(np.full((16, 16, 4), -1000, np.int16),
                             np.eye(4)),
             osp.join(raw, 'AbdomenCT-1K-ImagePart1',
                      'Case_00001_0000.nii.gz'))
    from medssl.datasets.converters import ConversionError
    with pytest.raises(ConversionError, match='Case_00001: no slice with '
                       'body'):
        convert_abdomen1k(raw, str(tmp_path / 'out'), progress=False)

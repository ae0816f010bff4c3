import json
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest

from medssl.datasets.converters import (ConversionError, convert_abdomen1k,
                                        find_abdomen1k_cases)
from medssl.datasets.converters.ct_io import (canonical_to_slice, decode_hu,
                                              read_slice)
from medssl.datasets.phantom_writer import write_phantom_dataset
from medssl.datasets.phantoms import make_phantom_case


def test_find_cases_over_parts(phantom_abdomen1k_root):
    specs = find_abdomen1k_cases(phantom_abdomen1k_root)
    assert [s.case for s in specs] == [f'Case_{i:05d}' for i in range(1, 5)]
    assert {osp.basename(osp.dirname(s.image)) for s in specs} == {
        'AbdomenCT-1K-ImagePart1', 'AbdomenCT-1K-ImagePart2'
    }
    assert all(s.label.endswith(f'Mask/{s.case}.nii.gz') for s in specs)


def test_pretrain_split_drops_air_slices(abdomen1k_slices_root):
    out = abdomen1k_slices_root
    with open(osp.join(out, 'splits', 'pretrain.txt')) as f:
        names = f.read().split()
    assert names == sorted(names)
    expected = []
    for index in range(4):
        case = f'Case_{index + 1:05d}'
        ph = make_phantom_case(1, 'abdomen1k', (64, 64, 12), index=index)
        Z = ph['hu'].shape[2]
        with open(osp.join(out, 'meta', f'{case}.json')) as f:
            meta = json.load(f)
        assert meta['num_slices_total'] == Z
        assert meta['slices'] == list(range(Z - 1))  # top slice is all air
        for z in meta['slices']:
            name = f'{case}_{z:04d}'
            expected.append(name)
            img = read_slice(osp.join(out, 'img_dir', name + '.npy'))
            assert np.array_equal(
                decode_hu(img),
                canonical_to_slice(np.clip(np.rint(ph['hu']), -1024, None),
                                   z))
            lbl = cv2.imread(
                osp.join(out, 'ann_dir', name + '.png'), cv2.IMREAD_UNCHANGED)
            assert np.array_equal(lbl, canonical_to_slice(ph['label'], z))
            assert lbl.max() <= 4
    # pretraining: every body slice but those of the val / test volumes
    with open(osp.join(out, 'splits', 'train_cases.txt')) as f:
        train = f.read().split()
    assert names == sorted(n for n in expected
                           if n.rsplit('_', 1)[0] in train)
    with open(osp.join(out, 'summary.json')) as f:
        summary = json.load(f)
    assert summary['slices'] == len(expected)
    assert summary['img_format'] == 'npy'
    # segmentation: the masked cases (all 4 here) by volume
    assert summary['splits']['pretrain'] == len(names)
    assert sum(summary['splits'][k] for k in ('train', 'val', 'test')) == \
        len(expected)
    with open(osp.join(out, 'splits', 'pretrain_cases.txt')) as f:
        assert f.read().split() == train


def test_options_keep_empty_no_masks_glob(tmp_path):
    raw = str(tmp_path / 'raw')
    write_phantom_dataset(raw, 'abdomen1k', num_cases=2, shape=(32, 32, 6))
    out = str(tmp_path / 'keep')
    s = convert_abdomen1k(raw, out, keep_empty=True, with_masks=False,
                          progress=False)
    zs = [make_phantom_case(0, 'abdomen1k', (32, 32, 6), index=i)
          ['hu'].shape[2] for i in range(2)]
    assert s['slices'] == sum(zs)
    assert os.listdir(osp.join(out, 'ann_dir')) == []
    # a variant layout: all images in one folder, no _0000 suffix
    flat = str(tmp_path / 'flat')
    os.makedirs(osp.join(flat, 'images'))
    shutil.copy(
        osp.join(raw, 'AbdomenCT-1K-ImagePart1', 'Case_00001_0000.nii.gz'),
        osp.join(flat, 'images', 'Case_00001.nii.gz'))
    s = convert_abdomen1k(flat, str(tmp_path / 'flat_out'),
                          img_glob='images/*.nii.gz', progress=False)
    assert s['cases'] == ['Case_00001'] and s['slices'] == zs[0] - 1
    # a high body-fraction threshold drops every slice: the cases are empty,
    # skipped (never 0-slice training cases), so nothing is left to convert
    with pytest.raises(ConversionError,
                       match=r'Case_00001: no slice with body.*Case_00002'):
        convert_abdomen1k(raw, str(tmp_path / 'thr'), progress=False,
                          min_body_fraction=0.99)


def test_bad_mask_and_empty_folder(tmp_path):
    raw = str(tmp_path / 'raw')
    write_phantom_dataset(raw, 'abdomen1k', num_cases=2, shape=(32, 32, 6),
                          broken=('float_labels', ))
    with pytest.raises(ConversionError, match='Case_00002.*non-integer'):
        convert_abdomen1k(raw, str(tmp_path / 'o'), progress=False)
    s = convert_abdomen1k(raw, str(tmp_path / 'o2'), on_error='skip',
                          progress=False)
    assert s['cases'] == ['Case_00001']
    assert s['skipped'][0]['case'] == 'Case_00002'
    # images only: the broken mask is not read at all
    s = convert_abdomen1k(raw, str(tmp_path / 'o3'), with_masks=False,
                          progress=False)
    assert s['num_cases'] == 2
    os.makedirs(tmp_path / 'empty')
    with pytest.raises(ConversionError, match='no AbdomenCT-1K images'):
        convert_abdomen1k(str(tmp_path / 'empty'), str(tmp_path / 'o4'))

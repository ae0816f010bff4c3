import os.path as osp

import numpy as np
import pytest

from medssl.datasets import AbdomenCT1KDataset, BTCVDataset
from medssl.datasets.btcv import select_case_fraction
from medssl.registry import DATASETS


def _lines(root, name):
    with open(osp.join(root, 'splits', name)) as f:
        return f.read().split()


def test_btcv_dataset_samples_and_classes(btcv_slices_root):
    ds = BTCVDataset(data_root=btcv_slices_root, ann_file='splits/train.txt')
    names = _lines(btcv_slices_root, 'train.txt')
    assert len(ds) == len(names)
    assert len(ds.metainfo['classes']) == 14
    assert ds.metainfo['classes'][6] == 'liver'
    assert len(ds.metainfo['palette']) == 14
    info = ds.get_data_info(0)
    assert info['case'] == names[0].rsplit('_', 1)[0]
    assert info['img_path'].endswith(f'img_dir/{names[0]}.npy')
    assert info['seg_map_path'].endswith(f'ann_dir/{names[0]}.png')
    assert info['reduce_zero_label'] is False
    assert {ds.get_data_info(i)['case'] for i in range(len(ds))} == set(
        _lines(btcv_slices_root, 'train_cases.txt'))
    val = DATASETS.build(
        dict(type='BTCVDataset', data_root=btcv_slices_root,
             ann_file='splits/val.txt'))
    assert len(val) == len(_lines(btcv_slices_root, 'val.txt'))


def test_btcv_pipeline_end_to_end(btcv_slices_root):
    ds = BTCVDataset(
        data_root=btcv_slices_root,
        ann_file='splits/test.txt',
        pipeline=[
            dict(type='LoadCTSlice'),
            dict(type='mmseg.LoadAnnotations'),
            dict(type='HUWindow', windows=[(-175, 250), (-1000, 1000)]),
            dict(type='mmseg.PackSegInputs')
        ])
    names = _lines(btcv_slices_root, 'test.txt')
    out = ds[names.index('img0039_0006')]  # mid-volume slice
    assert out['inputs'].shape[0] == 2
    seg = out['data_samples'].gt_sem_seg.data
    assert seg.shape[-2:] == out['inputs'].shape[-2:]
    assert int(seg.max()) <= 13 and len(seg.unique()) > 3


def test_case_fraction_whole_volumes(btcv_slices_root):
    names = _lines(btcv_slices_root, 'train.txt')
    per_case = {}
    for n in names:
        per_case.setdefault(n.rsplit('_', 1)[0], []).append(n)
    chosen = []
    for seed in range(4):
        ds = BTCVDataset(data_root=btcv_slices_root,
                         ann_file='splits/train.txt', case_fraction=0.34,
                         fraction_seed=seed)
        cases = {ds.get_data_info(i)['case'] for i in range(len(ds))}
        assert len(cases) == 1 and sorted(cases) == ds.selected_cases
        (case, ) = cases
        assert len(ds) == len(per_case[case])  # the whole volume
        again = BTCVDataset(data_root=btcv_slices_root,
                            ann_file='splits/train.txt', case_fraction=0.34,
                            fraction_seed=seed)
        assert again.selected_cases == ds.selected_cases
        chosen.append(case)
    assert len(set(chosen)) >= 2  # different seeds pick different volumes
    tiny = BTCVDataset(data_root=btcv_slices_root,
                       ann_file='splits/train.txt', case_fraction=0.01)
    assert len(tiny.selected_cases) == 1  # at least one case
    with pytest.raises(ValueError, match='case_fraction'):
        BTCVDataset(data_root=btcv_slices_root, ann_file='splits/train.txt',
                    case_fraction=0)


def test_select_case_fraction_properties():
    cases = [f'img{i:04d}' for i in range(30)]
    a = select_case_fraction(cases, 0.2, seed=0)
    assert len(a) == 6 and a == sorted(a)
    assert a == select_case_fraction(list(reversed(cases)), 0.2, seed=0)
    assert a != select_case_fraction(cases, 0.2, seed=1)
    big = select_case_fraction(cases, 0.5, seed=0)
    assert set(a) <= set(big)  # nested for a fixed seed
    assert select_case_fraction(cases, 1.0) == cases
    # num_cases selects exactly that many (the *_<k>vol configs), nested
    # with the fraction rule for the same seed
    three = select_case_fraction(cases, 1.0, seed=0, num_cases=3)
    assert len(three) == 3 and set(three) <= set(a)
    with pytest.raises(ValueError, match='num_cases'):
        select_case_fraction(cases, 1.0, num_cases=31)


def test_empty_split_file(tmp_path, btcv_slices_root):
    empty = tmp_path / 'empty.txt'
    empty.write_text('\n')
    with pytest.raises(ValueError, match='empty.txt lists no slices'):
        BTCVDataset(data_root=btcv_slices_root, ann_file=str(empty))
    with pytest.raises(FileNotFoundError, match='nope.txt'):
        BTCVDataset(data_root=btcv_slices_root, ann_file='splits/nope.txt')


def test_abdomen1k_dataset(abdomen1k_slices_root):
    ds = AbdomenCT1KDataset(
        data_root=abdomen1k_slices_root,
        ann_file='splits/pretrain.txt',
        case_fraction=0.5,
        fraction_seed=3,
        pipeline=[dict(type='LoadCTSlice'),
                  dict(type='mmseg.LoadAnnotations')])
    assert ds.metainfo['classes'] == ('background', 'liver', 'kidney',
                                      'spleen', 'pancreas')
    # pretrain.txt lists the 2 training volumes of the 4 phantoms (val and
    # test are left out): half of them is 1
    assert _lines(abdomen1k_slices_root, 'pretrain_cases.txt') == [
        'Case_00001', 'Case_00002']
    assert len(ds.selected_cases) == 1
    names = _lines(abdomen1k_slices_root, 'pretrain.txt')
    assert len(ds) == sum(n.rsplit('_', 1)[0] in ds.selected_cases
                          for n in names)
    out = ds[0]
    assert out['img'].dtype == np.float32
    assert out['gt_seg_map'].max() <= 4

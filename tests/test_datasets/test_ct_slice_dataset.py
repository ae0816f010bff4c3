import os.path as osp

import numpy as np
import pytest

from medssl.datasets import CTSliceDataset
from medssl.registry import DATASETS


def test_ct_slice_dataset(abdomen1k_slices_root):
    ds = DATASETS.build(
        dict(
            type='CTSliceDataset',
            data_root=abdomen1k_slices_root,
            ann_file='splits/pretrain.txt',
            data_prefix=dict(img_path='img_dir'),
            pipeline=[dict(type='LoadCTSlice'), dict(type='HUWindow')]))
    with open(osp.join(abdomen1k_slices_root, 'splits',
                       'pretrain.txt')) as f:
        names = f.read().split()
    assert len(ds) == len(names)
    info = ds.get_data_info(5)
    assert set(info) == {'img_path', 'case', 'slice_name', 'sample_idx'}
    assert info['slice_name'] == names[5]
    assert info['case'] == names[5].rsplit('_', 1)[0]
    assert info['img_path'] == osp.join(abdomen1k_slices_root, 'img_dir',
                                        names[5] + '.npy')
    out = ds[5]
    assert out['img'].dtype == np.float32 and out['img'].shape[2] == 1
    assert 0 <= out['img'].min() and out['img'].max() <= 1
    assert 'gt_seg_map' not in out and 'seg_map_path' not in out


def test_ct_slice_dataset_errors(tmp_path):
    (tmp_path / 'splits').mkdir()
    (tmp_path / 'splits' / 'pretrain.txt').write_text('')
    with pytest.raises(ValueError, match='pretrain.txt lists no slices'):
        CTSliceDataset(data_root=str(tmp_path))
    with pytest.raises(FileNotFoundError, match='missing.txt'):
        CTSliceDataset(data_root=str(tmp_path), ann_file='missing.txt')

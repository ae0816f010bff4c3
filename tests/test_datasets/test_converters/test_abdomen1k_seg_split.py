"""AbdomenCT-1K: a volume-level train/val split of the masked cases."""
import json
import os.path as osp

from medssl.datasets.converters.abdomen1k import segmentation_split


def _read(path):
    with open(path) as f:
        return f.read().split()


def test_split_files_by_volume(abdomen1k_slices_root):
    splits = osp.join(abdomen1k_slices_root, 'splits')
    train = _read(osp.join(splits, 'train_cases.txt'))
    val = _read(osp.join(splits, 'val_cases.txt'))
    pretrain = _read(osp.join(splits, 'pretrain_cases.txt'))
    # 4 masked phantom cases, every 5th -> val: fallback keeps one val case
    assert len(train) == 3 and len(val) == 1
    assert set(train) | set(val) == set(pretrain)
    assert not set(train) & set(val)
    # no slice of a val volume is in train
    train_slices = _read(osp.join(splits, 'train.txt'))
    val_slices = _read(osp.join(splits, 'val.txt'))
    assert train_slices and val_slices
    assert {s.rsplit('_', 1)[0] for s in train_slices} == set(train)
    assert {s.rsplit('_', 1)[0] for s in val_slices} == set(val)
    # deterministic: the same rule gives the same split
    again = segmentation_split(abdomen1k_slices_root, list(reversed(pretrain)),
                               5)
    assert again == dict(train=train, val=val)
    assert segmentation_split(abdomen1k_slices_root, [], 5) == {}


def test_every_nth_masked_case_is_val(tmp_path):
    (tmp_path / 'meta').mkdir()
    cases = [f'Case_{i:05d}' for i in range(1, 12)]
    for i, c in enumerate(cases):
        label = None if c == 'Case_00003' else f'Mask/{c}.nii.gz'
        (tmp_path / 'meta' / f'{c}.json').write_text(
            json.dumps(dict(case=c, label=label)))
    out = segmentation_split(str(tmp_path), cases, 5)
    # 10 masked cases (00003 has none): the 5th and 10th of them are val
    assert out['val'] == ['Case_00006', 'Case_00011']
    assert len(out['train']) == 8 and 'Case_00003' not in out['train']

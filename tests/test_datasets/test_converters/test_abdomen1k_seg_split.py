"""AbdomenCT-1K: a volume-level train/val/test split of the masked cases."""
import json
import os.path as osp

from medssl.datasets.converters.abdomen1k import segmentation_split


def _read(path):
    with open(path) as f:
        return f.read().split()


def test_split_files_by_volume(abdomen1k_slices_root):
    splits = osp.join(abdomen1k_slices_root, 'splits')
    cases = {k: _read(osp.join(splits, f'{k}_cases.txt'))
             for k in ('train', 'val', 'test')}
    with open(osp.join(abdomen1k_slices_root, 'summary.json')) as f:
        converted = json.load(f)['cases']
    # 4 masked phantom cases, every 5th -> test, every 5th of the rest ->
    # val: the fallbacks keep one case each
    assert [len(cases[k]) for k in ('train', 'val', 'test')] == [2, 1, 1]
    assert set().union(*cases.values()) == set(converted)
    assert sum(map(len, cases.values())) == len(converted)  # disjoint
    # pretraining sees the training volumes only, never val / test
    assert _read(osp.join(splits, 'pretrain_cases.txt')) == cases['train']
    # no slice of a val/test volume is in another split
    for k, cs in cases.items():
        slices = _read(osp.join(splits, f'{k}.txt'))
        assert slices and {s.rsplit('_', 1)[0] for s in slices} == set(cs)
    # deterministic: the same rule gives the same split
    again = segmentation_split(abdomen1k_slices_root,
                               list(reversed(converted)), 5)
    assert again == cases
    assert segmentation_split(abdomen1k_slices_root, [], 5) == {}


def test_every_nth_masked_case_is_test_then_val(tmp_path):
    (tmp_path / 'meta').mkdir()
    cases = [f'Case_{i:05d}' for i in range(1, 13)]
    for c in cases:
        label = None if c == 'Case_00003' else f'Mask/{c}.nii.gz'
        (tmp_path / 'meta' / f'{c}.json').write_text(
            json.dumps(dict(case=c, label=label)))
    out = segmentation_split(str(tmp_path), cases, 5)
    # 11 masked cases (00003 has none): the 5th and 10th are test, the 5th
    # of the 9 others is val
    assert out['test'] == ['Case_00006', 'Case_00011']
    assert out['val'] == ['Case_00007']
    assert len(out['train']) == 8 and 'Case_00003' not in out['train']

"""AbdomenCT-1K: pretraining never sees the volumes that segmentation is
selected (val) or judged (test) on (issue 15)."""
import importlib.util
import json
import os
import os.path as osp

ROOT = osp.join(osp.dirname(__file__), '..', '..', '..')


def _load(rel):
    spec = importlib.util.spec_from_file_location(
        rel.replace('/', '_')[:-3], osp.join(ROOT, rel))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _split(out, name):
    with open(osp.join(out, 'splits', f'{name}.txt')) as f:
        return f.read().split()


def test_pretrain_split_leaves_val_and_test_volumes_out(tmp_path):
    raw = str(tmp_path / 'raw')
    _load('tools/misc/make_phantoms.py').main([
        raw, '--layout', 'abdomen1k', '--num-cases', '7', '--shape', '32',
        '32', '6'])
    os.remove(osp.join(raw, 'Mask', 'Case_00002.nii.gz'))  # unlabelled case
    cli = _load('tools/dataset_converters/abdomen1k.py')
    out = str(tmp_path / 'out')
    assert cli.main([raw, out, '--threads', '1']) == 0

    # 6 masked cases (1, 3-7): the 5th (00006) is test, the 5th of the other
    # 5 (00007) val; pretraining keeps the unlabelled case and the training
    # volumes
    assert _split(out, 'test_cases') == ['Case_00006']
    assert _split(out, 'val_cases') == ['Case_00007']
    assert _split(out, 'train_cases') == [
        'Case_00001', 'Case_00003', 'Case_00004', 'Case_00005']
    assert _split(out, 'pretrain_cases') == [
        f'Case_{i:05d}' for i in range(1, 6)]
    held_out = set(_split(out, 'val')) | set(_split(out, 'test'))
    pretrain = _split(out, 'pretrain')
    assert held_out and not held_out & set(pretrain)
    assert {s.rsplit('_', 1)[0] for s in pretrain} == set(
        _split(out, 'pretrain_cases'))
    # every other converted slice is pretraining data
    with open(osp.join(out, 'summary.json')) as f:
        summary = json.load(f)
    assert len(pretrain) + len(held_out) == summary['slices']
    assert summary['splits']['pretrain'] == len(pretrain)

    # without masks there is no segmentation split: everything pretrains
    img_only = str(tmp_path / 'img_only')
    assert cli.main([raw, img_only, '--no-masks', '--threads', '1']) == 0
    assert _split(img_only, 'pretrain_cases') == [
        f'Case_{i:05d}' for i in range(1, 8)]
    assert not osp.exists(osp.join(img_only, 'splits', 'test.txt'))

import json
import os
import os.path as osp
import re

ROOT = osp.join(osp.dirname(__file__), '..', '..', '..')


def _load(rel):
    from tool_scripts import load_script
    return load_script(rel)


def test_make_phantoms_and_abdomen1k_cli(tmp_path, capsys):
    raw, out = str(tmp_path / 'raw'), str(tmp_path / 'out')
    _load('tools/misc/make_phantoms.py').main([
        raw, '--layout', 'abdomen1k', '--num-cases', '3', '--shape', '32',
        '32', '6', '--broken', 'unknown_labels'
    ])
    assert sorted(os.listdir(osp.join(raw, 'Mask'))) == [
        'Case_00001.nii.gz', 'Case_00002.nii.gz', 'Case_00003.nii.gz'
    ]
    cli = _load('tools/dataset_converters/abdomen1k.py')
    assert cli.main([raw, out, '--nproc', '2']) == 1
    assert 'Case_00003' in capsys.readouterr().err
    assert cli.main([raw, out, '--on-error', 'skip', '--threads', '1']) == 0
    with open(osp.join(out, 'summary.json')) as f:
        summary = json.load(f)
    assert summary['cases'] == ['Case_00001', 'Case_00002']
    assert summary['skipped'][0]['case'] == 'Case_00003'
    assert 'unknown label ids [99]' in summary['skipped'][0]['reason']
    assert cli.main([raw, str(tmp_path / 'img_only'), '--no-masks',
                     '--keep-empty']) == 0
    assert os.listdir(tmp_path / 'img_only' / 'ann_dir') == []


def test_empty_slice_option_has_one_name(monkeypatch, capsys):
    """Both converters take ``--keep-empty`` / ``--no-keep-empty`` (BTCV
    keeps all-air slices by default, AbdomenCT-1K drops them);
    ``--drop-empty`` still works as a hidden alias of ``--no-keep-empty``,
    and the value reaches the converter as ``keep_empty``."""
    import pytest

    import medssl.datasets.converters as conv
    got = {}

    def fake(*args, **kwargs):
        got.update(kwargs)
        return {}

    for name, keep_default in (('btcv', True), ('abdomen1k', False)):
        monkeypatch.setattr(conv, f'convert_{name}', fake)
        cli = _load(f'tools/dataset_converters/{name}.py')
        for flags, keep in (([], keep_default), (['--keep-empty'], True),
                            (['--no-keep-empty'], False),
                            (['--drop-empty'], False)):
            got.clear()
            assert cli.main(['raw', 'out'] + flags) == 0
            assert got['keep_empty'] is keep, (name, flags)
        with pytest.raises(SystemExit):
            cli.parse_args(['--help'])
        text = capsys.readouterr().out
        assert '--keep-empty, --no-keep-empty' in text
        option = re.search(r'--keep-empty, --no-keep-empty\n(.*?)\n  --min-body',
                           text, re.S).group(1)
        assert f'(default: {keep_default})' in option
        assert '--drop-empty' not in text


# AbdomenCT-1K: pretraining never sees the volumes that segmentation is
# selected (val) or judged (test) on.
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

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

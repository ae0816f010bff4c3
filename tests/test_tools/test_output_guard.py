"""No tool writes over its own input or into a dataset's image/label
folders: tools/test.py --out, selfsup2mmseg.py DST == SRC,
VolumeDiceMetric(pred_dir=...) -- one line naming the path, exit code != 0,
nothing written (medssl.utils.output_guard)."""
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from medssl.utils.output_guard import OutputPathError, is_inside, same_path

ROOT = Path(__file__).resolve().parents[2]
SEG = str(ROOT / 'configs/benchmarks/mmsegmentation/btcv/'
          'fcn_r18-d8_1xb2-20it_btcv-phantom.py')


def _snapshot(folder):
    return {p: p.read_bytes() for p in Path(folder).rglob('*')
            if p.is_file()}


def test_path_helpers(tmp_path):
    (tmp_path / 'a').mkdir()
    os.symlink(tmp_path / 'a', tmp_path / 'l')
    assert same_path(str(tmp_path / 'l'), str(tmp_path / 'a'))
    assert same_path(str(tmp_path / 'a' / '..' / 'a'), str(tmp_path / 'a'))
    assert not same_path(str(tmp_path / 'a'), str(tmp_path / 'b'))
    assert is_inside(str(tmp_path / 'l' / 'x' / 'y'), str(tmp_path / 'a'))
    # a sibling with the same prefix is not inside
    assert not is_inside(str(tmp_path / 'ab'), str(tmp_path / 'a'))


def test_selfsup2mmseg_refuses_dst_equal_src(tmp_path, capsys):
    main = runpy.run_path(
        str(ROOT / 'tools/model_converters/selfsup2mmseg.py'))['main']
    src = tmp_path / 'ssl.pth'
    torch.save(dict(state_dict={'backbone.w': torch.ones(2),
                                'neck.w': torch.ones(1)}), src)
    os.symlink(src, tmp_path / 'alias.pth')
    os.link(src, tmp_path / 'hard.pth')
    before = _snapshot(tmp_path)
    for dst in (src, tmp_path / 'alias.pth', tmp_path / 'hard.pth',
                tmp_path / '.' / 'ssl.pth'):
        assert main([str(src), str(dst)]) == 2
        err = capsys.readouterr().err
        assert err == (f'OutputPathError: output {dst} is the input '
                       f'checkpoint {src}: refusing to overwrite it; choose '
                       'another output path\n')
    assert _snapshot(tmp_path) == before
    # another name converts
    assert main([str(src), str(tmp_path / 'bb.pth')]) == 0


@pytest.mark.parametrize('sub', ['ann_dir', 'img_dir', 'ann_dir/preds',
                                 'alias_ann'])
def test_test_tool_refuses_out_in_dataset_folders(tmp_path, sub,
                                                  btcv_slices_root):
    """--out into the ground truth would overwrite it (a rerun then scores
    mDice 100): refused before the model or the work dir exist."""
    root = tmp_path / 'data'
    os.symlink(btcv_slices_root, root)
    os.symlink(Path(btcv_slices_root) / 'ann_dir', tmp_path / 'alias_ann')
    out = tmp_path / sub if sub == 'alias_ann' else root / sub
    before = _snapshot(btcv_slices_root)
    main = runpy.run_path(str(ROOT / 'tools/test.py'))['main']
    opts = [f'{k}_dataloader.dataset.data_root={root}'
            for k in ('train', 'val', 'test')]
    what = 'image' if sub == 'img_dir' else 'label'
    with pytest.raises(OutputPathError,
                       match=f'output {out} is inside the train dataset '
                       f'{what} folder {root}/'):
        main([SEG, str(tmp_path / 'none.pth'), '--out', str(out),
              '--work-dir', str(tmp_path / 'w'), '--cfg-options', *opts])
    assert _snapshot(btcv_slices_root) == before
    assert not (tmp_path / 'w').exists()


def test_test_tool_cli_exit_code_and_one_line(tmp_path, btcv_slices_root):
    ann = Path(btcv_slices_root) / 'ann_dir'
    opts = [f'{k}_dataloader.dataset.data_root={btcv_slices_root}'
            for k in ('train', 'val', 'test')]
    r = subprocess.run(
        [sys.executable, 'tools/test.py', SEG, str(tmp_path / 'none.pth'),
         '--out', str(ann), '--work-dir', str(tmp_path / 'w'),
         '--cfg-options', *opts], capture_output=True, text=True, cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 1
    assert r.stderr.startswith(f'OutputPathError: output {ann} is inside '
                               'the train dataset label folder ')
    assert len(r.stderr.splitlines()) == 1
    assert not (tmp_path / 'w').exists()


def test_metric_refuses_pred_dir_in_the_label_folder(tmp_path):
    from medssl.evaluation import VolumeDiceMetric
    (tmp_path / 'ann_dir').mkdir()
    gt_png = tmp_path / 'ann_dir' / 'c_0000.png'
    gt_png.write_bytes(b'ground truth')
    sample = dict(img_path=str(tmp_path / 'img_dir' / 'c_0000.npy'),
                  seg_map_path=str(gt_png),
                  pred_sem_seg=dict(data=torch.zeros(1, 4, 4)),
                  gt_sem_seg=dict(data=torch.zeros(1, 4, 4)))
    for pred_dir in ('ann_dir', 'img_dir'):
        metric = VolumeDiceMetric(num_classes=2,
                                  pred_dir=str(tmp_path / pred_dir))
        with pytest.raises(OutputPathError, match='is inside the (label|'
                           'image) folder'):
            metric.process({}, [sample])
    assert gt_png.read_bytes() == b'ground truth'
    assert not (tmp_path / 'img_dir').exists()
    # elsewhere it writes the PNG
    metric = VolumeDiceMetric(num_classes=2, pred_dir=str(tmp_path / 'p'))
    metric.process({}, [sample])
    assert os.listdir(tmp_path / 'p') == ['c_0000.png']

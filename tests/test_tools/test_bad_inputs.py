"""Command-line tools on bad inputs: one line naming the file and the
problem, a non-zero exit code, nothing half-written (issue 11)."""
import os
import runpy
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SEG = str(ROOT / 'configs/benchmarks/mmsegmentation/btcv/'
          'fcn_r18-d8_1xb2-20it_btcv-phantom.py')
MOCO = str(ROOT / 'configs/selfsup/mocov2/mocov2_r18_1xb4-6it_phantom.py')


def tool(name):
    return runpy.run_path(str(ROOT / 'tools' / f'{name}.py'))


class RunsCode:

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def test_selfsup2mmseg_refuses_code_and_names_file(tmp_path, capsys):
    main = tool('model_converters/selfsup2mmseg')['main']
    evil, marker = tmp_path / 'evil.pth', tmp_path / 'PWNED'
    torch.save(dict(state_dict={'backbone.w': torch.ones(1)},
                    x=RunsCode(marker)), evil)
    assert main([str(evil), str(tmp_path / 'out.pth')]) == 1
    assert capsys.readouterr().err == (
        f'CheckpointError: {evil}: refused to unpickle global posix.system '
        '(not in the allow-list of medssl.utils.checkpoint: a checkpoint may '
        'hold tensors, containers, numbers, strings, numpy arrays and '
        'mmengine HistoryBuffers only; it may try to run code)\n')
    assert not marker.exists() and not (tmp_path / 'out.pth').exists()
    text = tmp_path / 'notes.pth'
    text.write_text('not a checkpoint\n')
    assert main([str(text), str(tmp_path / 'out.pth')]) == 1
    assert f'CheckpointError: {text}: not a PyTorch checkpoint (a text ' \
        'file' in capsys.readouterr().err
    nokeys = tmp_path / 'nokeys.pth'
    torch.save(dict(state_dict={'head.w': torch.ones(1)}), nokeys)
    assert main([str(nokeys), str(tmp_path / 'out.pth')]) == 1
    assert f'{nokeys}: no backbone.* keys' in capsys.readouterr().err
    assert 'out.pth' not in os.listdir(tmp_path)


def test_train_cfg_option_typo_is_refused():
    mod = tool('train')
    from medssl.utils.config import ConfigKeyError
    args = mod['parse_args']([MOCO, '--cfg-options',
                              'optim_wraper.optimizer.lr=0.1'])
    with pytest.raises(ConfigKeyError, match="did you mean 'optim_wrapper'"):
        mod['build_config'](args)


def test_train_resume_ignores_stray_temporaries(tmp_path):
    mod = tool('train')
    work = tmp_path / 'work'
    work.mkdir()
    torch.save(dict(meta=dict(iter=2)), work / 'iter_2.pth')
    (work / '.iter_4.pth.tmp-77-0123abcd').write_bytes(b'PK\x03\x04 half')
    (work / 'last_checkpoint').write_text(str(work / 'iter_'))  # cut short
    cfg = mod['build_config'](mod['parse_args'](
        [MOCO, '--work-dir', str(work), '--resume']))
    assert cfg.resume is True and cfg.load_from == str(work / 'iter_2.pth')
    hooks = [h['type'] for h in cfg.custom_hooks]
    assert hooks.count('NonFiniteLossHook') == 1


@pytest.mark.slow
def test_test_tool_refuses_ssl_checkpoint(tmp_path, btcv_slices_root):
    from medssl.utils.checkpoint import CheckpointError
    ssl = tmp_path / 'ssl.pth'
    from medssl.registry import MODELS
    bb = MODELS.build(dict(type='ResNet', depth=18, in_channels=1))
    state = {f'backbone.{k}': v for k, v in bb.state_dict().items()}
    state['neck.mlp.0.weight'] = torch.zeros(8, 512)
    torch.save(dict(meta=dict(), state_dict=state), ssl)
    main = tool('test')['main']
    opts = [f'{k}_dataloader.dataset.data_root={btcv_slices_root}'
            for k in ('train', 'val', 'test')]
    with pytest.raises(CheckpointError) as err:
        main([SEG, str(ssl), '--work-dir', str(tmp_path / 'w'),
              '--cfg-options', *opts])
    msg = str(err.value)
    assert msg.startswith(f'{ssl}: does not fit EncoderDecoder: ')
    assert 'missing: ' in msg and 'decode_head.conv_seg.* (2)' in msg
    assert 'unexpected keys: neck.mlp.* (1)' in msg
    assert not (tmp_path / 'w' / 'volume_dice.json').exists()


@pytest.mark.slow
def test_infer_folder_writes_good_files_names_bad_ones(
        tmp_path, phantom_btcv_root, capsys):
    from medssl.apis.inference import init_segmentor
    model = init_segmentor(SEG, None)
    ckpt = tmp_path / 'model.pth'
    torch.save(dict(meta=dict(), state_dict=model.state_dict()), ckpt)
    src = tmp_path / 'in'
    src.mkdir()
    imgs = sorted((Path(phantom_btcv_root) / 'RawData/Training/img').glob(
        '*.nii.gz'))
    data = imgs[0].read_bytes()
    (src / 'a_truncated.nii.gz').write_bytes(data[:len(data) // 3])
    nib.save(nib.Nifti1Image(np.zeros((16, 16), np.float32), np.eye(4)),
             str(src / 'b_2d.nii.gz'))
    for i in (1, 2):
        shutil.copy(imgs[i], src / f'c{i}.nii.gz')
    out = tmp_path / 'out'
    main = tool('infer_volume')['main']
    rc = main([SEG, str(ckpt), str(src), str(out), '--no-progress',
               '--batch-size', '16'])
    assert rc == 1
    assert sorted(os.listdir(out)) == ['c1.nii.gz', 'c2.nii.gz']
    for i in (1, 2):
        assert nib.load(str(out / f'c{i}.nii.gz')).shape == \
            nib.load(str(imgs[i])).shape
    err = capsys.readouterr().err
    assert '2 file(s) failed, 2 written:' in err
    assert f'VolumeError: {src / "a_truncated.nii.gz"}: EOFError' in err
    assert (f'VolumeError: {src / "b_2d.nii.gz"}: ValueError: expected a '
            '3D volume, got shape (16, 16)') in err

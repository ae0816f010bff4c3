"""tools/model_converters/selfsup2mmseg.py CLI."""
import runpy
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


def fake_ssl(path, with_decorrelation=True):
    state = {
        'backbone.conv1.weight': torch.randn(4, 1, 3, 3),
        'backbone.layer4.0.bn1.running_mean': torch.randn(4),
        'momentum_encoder.module.backbone.conv1.weight': torch.randn(4, 1, 3,
                                                                     3),
        'neck.mlp.0.weight': torch.randn(2, 4),
        'head.queue': torch.randn(2, 8),
    }
    if with_decorrelation:
        state['decorrelation.running_mean'] = torch.arange(4.)
        state['decorrelation.running_whitening'] = 2 * torch.eye(2).repeat(
            2, 1, 1)
    torch.save(dict(meta=dict(epoch=3), state_dict=state), path)
    return state


def test_cli_converts_and_folds(tmp_path, capsys):
    main = runpy.run_path(
        str(ROOT / 'tools/model_converters/selfsup2mmseg.py'))['main']
    src = fake_ssl(tmp_path / 'ssl.pth')
    main([str(tmp_path / 'ssl.pth'), str(tmp_path / 'out.pth')])
    assert 'whitening=True' in capsys.readouterr().out
    out = torch.load(tmp_path / 'out.pth', weights_only=False)
    sd = out['state_dict']
    assert set(sd) == {
        'backbone.conv1.weight', 'backbone.layer4.0.bn1.running_mean',
        'backbone.whitening.weight', 'backbone.whitening.bias'
    }
    assert torch.equal(sd['backbone.conv1.weight'],
                       src['backbone.conv1.weight'])
    # W = 2 I (two 2x2 blocks), mu = (0, 1, 2, 3): bias = -2 mu
    torch.testing.assert_close(sd['backbone.whitening.weight'][:, :, 0, 0],
                               2 * torch.eye(4))
    torch.testing.assert_close(sd['backbone.whitening.bias'],
                               -2 * torch.arange(4.))
    assert out['meta']['whitening'] is True

    main([str(tmp_path / 'ssl.pth'), str(tmp_path / 'plain.pth'),
          '--no-whitening'])
    plain = torch.load(tmp_path / 'plain.pth', weights_only=False)
    assert not any('whitening' in k for k in plain['state_dict'])


def test_cli_without_decorrelation(tmp_path, capsys):
    main = runpy.run_path(
        str(ROOT / 'tools/model_converters/selfsup2mmseg.py'))['main']
    fake_ssl(tmp_path / 'ssl.pth', with_decorrelation=False)
    main([str(tmp_path / 'ssl.pth'), str(tmp_path / 'out.pth')])
    assert 'whitening=False' in capsys.readouterr().out


def test_real_medmoco_checkpoint_into_whitened_resnet(tmp_path, capsys):
    """The converter on a real MedMoCo (+ EigenDecorrelationNeck) state dict;
    the converted file initialises WhitenedResNet with its statistics."""
    from mmengine.config import Config

    from medssl.registry import MODELS
    from medssl.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(
        ROOT / 'configs/selfsup/medmoco/mocov2-decor_r18_1xb4-6it_phantom.py')
    ssl = MODELS.build(cfg.model)
    torch.manual_seed(0)
    ssl.decorrelation.running_mean.normal_()
    ssl.decorrelation.running_whitening.normal_()
    torch.save(dict(meta=dict(), state_dict=ssl.state_dict()),
               tmp_path / 'ssl.pth')
    main = runpy.run_path(
        str(ROOT / 'tools/model_converters/selfsup2mmseg.py'))['main']
    main([str(tmp_path / 'ssl.pth'), str(tmp_path / 'seg.pth')])
    bb = MODELS.build(
        dict(type='WhitenedResNet', depth=18, in_channels=1,
             out_indices=(3, ), dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1),
             init_cfg=dict(type='VerifiedPretrained',
                           checkpoint=str(tmp_path / 'seg.pth'),
                           prefix='backbone.')))
    bb.init_weights()
    assert torch.equal(bb.conv1.weight, ssl.backbone.conv1.weight)
    w = torch.block_diag(*ssl.decorrelation.running_whitening)
    torch.testing.assert_close(bb.whitening.weight[:, :, 0, 0], w)
    torch.testing.assert_close(
        bb.whitening.bias, -w @ ssl.decorrelation.running_mean, atol=1e-4,
        rtol=1e-4)

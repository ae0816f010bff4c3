"""Tests of MedMoCo (losses, gradients, MoCo equivalence, train_step, DDP)."""
import copy
import os
import socket
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmselfsup.structures import SelfSupDataSample

from medssl.analysis.variants import SWITCHES, model_config
from medssl.registry import MODELS as _MODELS
from medssl.utils import register_all_modules


class MODELS:  # noqa: N801  builds under the medssl default scope
    @staticmethod
    def build(cfg):
        register_all_modules(init_default_scope=False)
        with DefaultScope.overwrite_default_scope('medssl'):
            return _MODELS.build(cfg)


def _cfg(variant='full', queue_len=16, depth=18, num_groups=16):
    """Tiny MedMoCo config of ``variant`` (16 groups: 32 channels each at
    R18)."""
    return model_config(variant, depth, queue_len=queue_len, feat_dim=16,
                        hid_channels=64, local_hid_channels=32, momentum=0.9,
                        num_groups=num_groups, grid_size=2,
                        algorithm='MedMoCo')


def _vp(box, flip=False, size=64):
    return dict(crop_bbox=tuple(float(v) for v in box), flip=flip,
                img_shape=(size, size))


def _batch(n=4, size=64, seed=0, identical=False):
    g = torch.Generator().manual_seed(seed)
    im_q = torch.rand(n, 1, size, size, generator=g)
    im_k = im_q.clone() if identical else torch.rand(n, 1, size, size,
                                                     generator=g)
    samples = []
    for i in range(n):
        a = _vp((2 * i, i, 40 + 2 * i, 44 + i), flip=bool(i % 2))
        b = a if identical else _vp((10 + i, 12, 60, 60 - i), flip=i == 0)
        s = SelfSupDataSample()
        s.set_metainfo(dict(view_params=[a, b]))
        samples.append(s)
    return [im_q, im_k], samples


def test_losses_and_state_dict_keys():
    torch.manual_seed(0)
    model = MODELS.build(_cfg())
    inputs, samples = _batch()
    losses = model(inputs, samples, mode='loss')
    assert set(losses) == {'loss_global', 'loss_local', 'local_pairs',
                           'loss_decor'}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    # local_pairs is logged, not summed: the fraction of images whose views
    # share cells of >= min_cell_size feature pixels.
    assert 0 < losses['local_pairs'] <= 1
    # mmengine sums every key containing 'loss' and logs each.
    total, log_vars = model.parse_losses(losses)
    assert torch.allclose(total, losses['loss_global'] + losses['loss_local'] +
                          losses['loss_decor'])
    assert {'loss', 'loss_global', 'loss_local', 'loss_decor'} <= \
        set(log_vars)
    keys = set(model.state_dict())
    for k in ['queue', 'queue_ptr', 'decorrelation.running_mean',
              'decorrelation.running_cov', 'decorrelation.running_whitening',
              'decorrelation.num_batches_tracked', 'encoder_k.steps',
              'encoder_k.module.0.layer3.0.conv1.weight',
              'encoder_k.module.1.mlp.0.weight', 'local_neck.mlp.0.weight',
              'local_neck_k.module.mlp.0.weight', 'local_neck_k.steps']:
        assert k in keys, k
    # the decorrelation (no parameters) is shared, not copied to the key
    assert [k for k in keys if 'decorrelation.' in k] == [
        k for k in keys if k.startswith('decorrelation.')]
    # The decorrelation buffers were updated (train mode).
    assert model.decorrelation.running_mean.abs().sum() > 0


def test_local_loss_alone_reaches_layer3():
    torch.manual_seed(0)
    model = MODELS.build(_cfg())
    inputs, samples = _batch()
    losses = model(inputs, samples, mode='loss')
    losses['loss_local'].backward()
    g3 = [p.grad for p in model.backbone.layer3.parameters()]
    assert all(g is not None for g in g3)
    assert sum(g.abs().sum() for g in g3) > 0
    assert model.local_neck.mlp[0].weight.grad.abs().sum() > 0
    # The key encoder never receives gradients.
    assert all(p.grad is None for p in model.encoder_k.parameters())
    assert all(p.grad is None for p in model.local_neck_k.parameters())


def test_identical_views_positive_cells_match_under_shuffle():
    """Eval mode (BN/decorrelation use running stats, so key = query
    encoder exactly): with identical views every key cell equals its query
    cell although the key batch went through MoCo's batch shuffle."""
    torch.manual_seed(0)
    model = MODELS.build(_cfg())
    model.eval()
    captured = {}
    orig = model.local_head.loss

    def spy(q, k, valid):
        captured.update(q=q.detach(), k=k, valid=valid)
        return orig(q, k, valid)

    model.local_head.loss = spy
    inputs, samples = _batch(identical=True)
    model(inputs, samples, mode='loss')
    assert captured['valid'].all()
    assert torch.allclose(captured['q'], captured['k'], atol=1e-5)
    # Cells of different images/positions differ.
    assert not torch.allclose(captured['q'][0], captured['q'][1], atol=1e-3)


def test_decorrelation_loss_pushes_the_backbone():
    """loss_decor acts on the backbone's last map *before* the whitening
    neck: alone it sends gradient into layer4 (and not into the projector)."""
    torch.manual_seed(0)
    model = MODELS.build(_cfg('decor-loss'))
    inputs, samples = _batch(n=8)
    losses = model(inputs, samples, mode='loss')
    assert set(losses) == {'loss_global', 'loss_decor'}
    assert 0 < losses['loss_decor'] < 1
    losses['loss_decor'].backward()
    g4 = sum(p.grad.abs().sum() for p in model.backbone.layer4.parameters()
             if p.grad is not None)
    assert g4 > 0
    assert all(p.grad is None for p in model.neck.parameters())


def test_key_encoder_uses_the_querys_channel_groups():
    """With shuffled groups, the EMA key encoder whitens with the same
    permutation as the query in the same step: without optimizer steps (key =
    query weights), identical views and BN in eval mode, k == q."""
    torch.manual_seed(0)
    cfg = _cfg('decor-shuffled')
    cfg['momentum'] = 0.5  # no optimizer step: the EMA equals the query
    cfg['backbone']['norm_cfg'] = dict(type='BN', requires_grad=True)
    model = MODELS.build(cfg)
    captured = {}

    def spy(pos, neg):
        captured['pos'] = pos.detach()
        return pos.sum() * 0

    model.head.forward = spy
    for m in model.modules():  # BN on running stats in both encoders
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    inputs, samples = _batch(n=4, identical=True)
    for _ in range(3):  # the permutation changes every step
        model(inputs, samples, mode='loss')
        # q.k == 1 for every image: same features, same whitening groups
        assert torch.allclose(captured['pos'], torch.ones(4, 1), atol=1e-4)
    # the key whitening neither updates the statistics nor advances the step
    assert int(model.decorrelation.num_batches_tracked) == 3


def _moco_cfg():
    return model_config('mocov2', queue_len=16, feat_dim=16, hid_channels=64,
                        momentum=0.9)


def _data(inputs, samples):
    return dict(inputs=inputs, data_samples=samples)


def test_equivalent_to_moco_without_extras():
    torch.manual_seed(0)
    moco = MODELS.build(_moco_cfg())
    torch.manual_seed(0)
    med = MODELS.build(_cfg('mocov2'))
    # Same construction order -> same initial weights and queue.
    sd_moco = moco.state_dict()
    for k, v in med.state_dict().items():
        if not k.startswith('encoder_k'):
            assert torch.equal(v, sd_moco[k]), k
    wrappers = [
        OptimWrapper(torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9))
        for m in (moco, med)
    ]
    for step in range(3):
        inputs, samples = _batch(seed=step)
        outs = []
        for m, w in zip((moco, med), wrappers):
            torch.manual_seed(100 + step)  # same batch-shuffle permutation
            outs.append(m.train_step(_data(inputs, samples), w))
        assert set(outs[1]) == {'loss', 'loss_global'}
        assert outs[0]['loss'].item() == pytest.approx(
            outs[1]['loss_global'].item(), abs=1e-6)
    assert torch.allclose(moco.queue, med.queue, atol=1e-6)
    sd_med = med.state_dict()
    for k, v in moco.state_dict().items():
        if k.startswith('encoder_k.module'):
            assert torch.allclose(v.float(), sd_med[k].float(), atol=1e-6), k


def test_train_step_and_exact_resume():
    torch.manual_seed(0)
    model = MODELS.build(_cfg())
    wrapper = OptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9))
    w0 = model.backbone.layer3[0].conv1.weight.clone()
    for step in range(2):
        log_vars = model.train_step(_data(*_batch(seed=step)), wrapper)
    assert {'loss', 'loss_global', 'loss_local', 'loss_decor'} <= \
        set(log_vars)
    assert all(torch.isfinite(v) for v in log_vars.values())
    assert not torch.equal(w0, model.backbone.layer3[0].conv1.weight)
    assert int(model.queue_ptr) == 8 % 16
    # Resume from the state dict: the next step is identical.
    clone = MODELS.build(_cfg())
    clone.load_state_dict(copy.deepcopy(model.state_dict()), strict=True)
    wrapper2 = OptimWrapper(
        torch.optim.SGD(clone.parameters(), lr=0.05, momentum=0.9))
    wrapper2.load_state_dict(copy.deepcopy(wrapper.state_dict()))
    outs = []
    for m, w in ((model, wrapper), (clone, wrapper2)):
        torch.manual_seed(7)
        outs.append(m.train_step(_data(*_batch(seed=5)), w))
    for k in outs[0]:
        assert outs[0][k].item() == pytest.approx(outs[1][k].item(), abs=1e-6)


@pytest.mark.parametrize('variant', list(SWITCHES))
def test_every_variant_trains_with_its_switches(variant):
    """One train step of every variant of the table: the loss terms and
    modules are those its switches name."""
    sw = SWITCHES[variant]
    torch.manual_seed(0)
    model = MODELS.build(_cfg(variant, queue_len=24))
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.05))
    log_vars = model.train_step(_data(*_batch(n=6)), wrapper)
    expect = {'loss', 'loss_global'}
    if sw['local']:
        expect |= {'loss_local', 'local_pairs'}
    if sw['decorrelation_loss']:
        expect.add('loss_decor')
    assert set(log_vars) == expect
    assert all(torch.isfinite(v) for v in log_vars.values())
    decor = model.decorrelation
    assert (decor is None) == (sw['decorrelation'] is None)
    if decor is not None:
        assert decor.shuffle_groups == sw['decorrelation']['shuffle_groups']
        assert int(decor.num_batches_tracked) == 1


def test_fixed_and_shuffled_variants_differ_in_the_shuffling_alone():
    fixed = SWITCHES['decor-fixed']['decorrelation']
    shuffled = SWITCHES['decor-shuffled']['decorrelation']
    assert not fixed['shuffle_groups'] and shuffled['shuffle_groups']
    assert dict(fixed, shuffle_groups=True) == shuffled


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _dist_worker(rank, world, port, tmpdir):
    os.environ['MASTER_ADDR'] = '127.0.0.1'
    os.environ['MASTER_PORT'] = str(port)
    dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.set_num_threads(1)
    torch.manual_seed(0)  # same initial weights on both ranks
    model = MODELS.build(_cfg())
    # Eval: key encoder == query encoder, so identical views must give
    # identical cells after the cross-rank shuffle/unshuffle.
    model.eval()
    captured = {}
    orig = model.local_head.loss

    def spy(q, k, valid):
        captured.update(q=q.detach(), k=k)
        return orig(q, k, valid)

    model.local_head.loss = spy
    inputs, samples = _batch(n=2, seed=rank, identical=True)
    torch.manual_seed(rank)  # rank 0's permutation is broadcast
    model(inputs, samples, mode='loss')
    match = torch.allclose(captured['q'], captured['k'], atol=1e-5)
    # Train mode step through DDP.
    model.local_head.loss = orig
    model.train()
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.05))
    losses = ddp(*_batch(n=2, seed=10 + rank), mode='loss')
    loss, log_vars = model.parse_losses(losses)
    wrapper.update_params(loss)
    torch.save(
        dict(match=match, log={k: v.item() for k, v in log_vars.items()},
             rw=model.decorrelation.running_whitening.clone(),
             w=model.backbone.layer3[0].conv1.weight.detach().clone(),
             queue=model.queue.clone()),
        os.path.join(tmpdir, f'{rank}.pt'))
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_process_gloo():
    with tempfile.TemporaryDirectory() as tmpdir:
        mp.spawn(_dist_worker, args=(2, _free_port(), tmpdir), nprocs=2)
        res = [torch.load(os.path.join(tmpdir, f'{r}.pt')) for r in range(2)]
    assert res[0]['match'] and res[1]['match']
    for r in res:
        assert all(map(lambda v: v == v and abs(v) < 1e6, r['log'].values()))
        assert r['log']['loss_local'] > 0
    # Synchronised decorrelation statistics, DDP-averaged gradients and the
    # gathered MoCo queue are identical on both ranks.
    assert torch.allclose(res[0]['rw'], res[1]['rw'], atol=1e-6)
    assert torch.allclose(res[0]['w'], res[1]['w'], atol=1e-6)
    assert torch.allclose(res[0]['queue'], res[1]['queue'], atol=1e-6)

"""Tests of EigenDecorrelationNeck (train/eval, gradients, DDP statistics)."""
import os
import socket
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from medssl.models.backbones import fold_decorrelation
from medssl.models.necks import EigenDecorrelationNeck
from medssl.models.utils.whitening import (apply_grouped_whitening,
                                           eigh_inv_sqrt, grouped_moments,
                                           moments_to_mean_cov)
from medssl.registry import MODELS


def _feat(n=8, c=32, h=6, w=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(c, c, generator=g) / c**0.5 + torch.eye(c)
    x = torch.randn(n * h * w, c, generator=g) @ mix + 2.0
    return x.view(n, h, w, c).permute(0, 3, 1, 2).contiguous()


def _group_cov_err(y, groups):
    c = y.shape[1]
    x2d = y.permute(0, 2, 3, 1).reshape(-1, c).double()
    xc = (x2d - x2d.mean(0)).view(x2d.shape[0], groups, c // groups)
    cov = torch.einsum('mgi,mgj->gij', xc, xc) / x2d.shape[0]
    return (cov - torch.eye(c // groups, dtype=cov.dtype)).abs().max().item()


def test_train_batch_whitened():
    neck = MODELS.build(
        dict(type='EigenDecorrelationNeck', in_channels=32, num_groups=4,
             eps=1e-6))
    neck.train()
    other = torch.randn(8, 16, 6, 6)
    x = _feat()
    out = neck((other, x))
    assert len(out) == 2 and out[0] is other
    assert out[1].shape == x.shape and out[1].dtype == x.dtype
    assert _group_cov_err(out[1], 4) < 1e-3
    # Running mean and covariance blocks moved by `momentum` towards the
    # batch statistics; the eval whitening is the ZCA of the running
    # covariance (not an average of per-batch W).
    x2d = x.permute(0, 2, 3, 1).reshape(-1, 32).double()
    mean = x2d.mean(0)
    cov = (x2d - mean).t() @ (x2d - mean) / x2d.shape[0]
    assert torch.allclose(neck.running_mean, 0.1 * mean.float(), atol=1e-5)
    cov = cov * x2d.shape[0] / (x2d.shape[0] - 1)  # unbiased, as BN
    blockmask = torch.block_diag(*[torch.ones(8, 8)] * 4).bool()
    ref_cov = torch.where(blockmask, 0.9 * torch.eye(32) + 0.1 * cov.float(),
                          torch.zeros(32, 32))
    assert torch.allclose(neck.running_cov, ref_cov, atol=1e-5)
    blocks = torch.stack([ref_cov[i * 8:(i + 1) * 8, i * 8:(i + 1) * 8]
                          for i in range(4)]).double()
    lam, u = torch.linalg.eigh(blocks + 1e-6 * torch.eye(8, dtype=torch.double))
    w_ref = u @ torch.diag_embed(lam.rsqrt()) @ u.transpose(-1, -2)
    assert torch.allclose(neck.refresh_running_whitening().double(), w_ref,
                          atol=1e-4)


def test_eval_uses_running_statistics_and_folded_conv():
    neck = EigenDecorrelationNeck(in_channels=32, num_groups=4, momentum=1.0)
    neck.train()
    neck((_feat(seed=1), ))  # momentum 1 -> running = this batch's stats
    neck.eval()
    a, b = _feat(seed=2), _feat(seed=3) * 3.0
    ya, yb = neck((a, ))[0], neck((b, ))[0]
    weight, bias = fold_decorrelation(neck.running_mean,
                                      neck.refresh_running_whitening())
    assert weight.shape == (32, 32, 1, 1) and bias.shape == (32, )
    # Same fixed affine map for both batches == the folded 1x1 conv.
    assert torch.allclose(ya, F.conv2d(a, weight, bias), atol=1e-4)
    assert torch.allclose(yb, F.conv2d(b, weight, bias), atol=1e-4)
    # Off-diagonal blocks of the folded conv are zero (grouped whitening).
    assert weight[:8, 8:].abs().max() == 0
    # Running statistics do not change in eval mode.
    rw = neck.running_whitening.clone()
    neck((b, ))
    assert torch.equal(rw, neck.running_whitening)
    # Train-mode whitening of batch a differs from the eval transform.
    neck.train()
    assert not torch.allclose(neck((a, ))[0], ya, atol=1e-3)


def test_state_dict_keys():
    neck = EigenDecorrelationNeck(in_channels=16, num_groups=2)
    assert set(neck.state_dict()) == {'running_mean', 'running_cov',
                                      'running_whitening',
                                      'num_batches_tracked'}
    assert neck.running_whitening.shape == (2, 8, 8)
    assert neck.running_cov.shape == (16, 16)
    # Shuffled groups and full width: the eval whitening is full width.
    for kw in (dict(num_groups=2, shuffle_groups=True), dict(num_groups=1)):
        assert EigenDecorrelationNeck(16, **kw).running_whitening.shape == \
            (1, 16, 16)


def test_backward_finite_rank_deficient():
    neck = EigenDecorrelationNeck(in_channels=32, num_groups=2)
    # M = 2*2*2 = 8 positions < 16 channels per group, duplicated channels,
    # and a constant channel.
    x = torch.randn(2, 32, 2, 2)
    x[:, 1] = x[:, 0]
    x[:, 5] = 1.0
    x.requires_grad_(True)
    y = neck((x, ))[0]
    (y * torch.randn_like(y)).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_backward_finite_repeated_eigenvalues():
    neck = EigenDecorrelationNeck(in_channels=8, num_groups=1)
    # Orthogonal +-1 (Hadamard) columns: covariance is exactly I.
    h = torch.tensor([[1.0]])
    for _ in range(3):
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    x = h.t().reshape(1, 8, 2, 4).clone().requires_grad_(True)
    y = neck((x, ))[0]
    (y * torch.randn_like(y)).sum().backward()
    assert torch.isfinite(x.grad).all()


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _dist_worker(rank, world, port, tmpdir, shuffle=False):
    os.environ['MASTER_ADDR'] = '127.0.0.1'
    os.environ['MASTER_PORT'] = str(port)
    dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.set_num_threads(1)
    full = _feat(n=8, c=16, h=3, w=3, seed=5)
    local = full[rank * 4:(rank + 1) * 4].clone().requires_grad_(True)
    neck = EigenDecorrelationNeck(in_channels=16, num_groups=2, momentum=1.0,
                                  shuffle_groups=shuffle)
    neck.num_batches_tracked.fill_(7)
    y = neck((local, ))[0]
    y.pow(3).sum().backward()
    torch.save(
        dict(y=y.detach(), grad=local.grad, rm=neck.running_mean,
             rw=neck.running_whitening), os.path.join(tmpdir, f'{rank}.pt'))
    dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize('shuffle', [False, True])
def test_distributed_statistics_equal_global_batch(shuffle):
    """2 gloo ranks = 1 process on the concatenated batch, also with
    shuffled groups (every rank draws the same permutation)."""
    with tempfile.TemporaryDirectory() as tmpdir:
        mp.spawn(_dist_worker, args=(2, _free_port(), tmpdir, shuffle),
                 nprocs=2)
        res = [torch.load(os.path.join(tmpdir, f'{r}.pt')) for r in range(2)]
    full = _feat(n=8, c=16, h=3, w=3, seed=5).requires_grad_(True)
    neck = EigenDecorrelationNeck(in_channels=16, num_groups=2, momentum=1.0,
                                  shuffle_groups=shuffle)
    neck.num_batches_tracked.fill_(7)
    y = neck((full, ))[0]
    y.pow(3).sum().backward()
    for r in range(2):
        assert torch.allclose(res[r]['rm'], neck.running_mean, atol=1e-6)
        assert torch.allclose(res[r]['rw'], neck.running_whitening, atol=1e-6)
        assert torch.allclose(res[r]['y'], y[r * 4:(r + 1) * 4].detach(),
                              atol=1e-5)
        # Gradients flow through the all-reduced statistics (SyncBN-like).
        assert torch.allclose(res[r]['grad'], full.grad[r * 4:(r + 1) * 4],
                              atol=1e-4)


def _cov(y):
    x2d = y.permute(0, 2, 3, 1).reshape(-1, y.shape[1]).double()
    xc = x2d - x2d.mean(0)
    return xc.t() @ xc / x2d.shape[0]


def _cross_group_feat(n=16, c=32, seed=0):
    """Channel k of group 1 is channel k of group 0 plus a little noise:
    strong correlations only *across* the fixed contiguous groups."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n * 9, c // 2, generator=g)
    x = torch.cat([a, a + 0.3 * torch.randn(a.shape, generator=g)], 1)
    return x.view(n, 3, 3, c).permute(0, 3, 1, 2).contiguous()


def test_full_width_whitens_every_pair():
    neck = EigenDecorrelationNeck(in_channels=32, num_groups=1, eps=1e-6)
    y = neck((_cross_group_feat(), ))[0]
    err = (_cov(y) - torch.eye(32, dtype=torch.double)).abs().max()
    assert err < 1e-3


def test_shuffled_groups_reach_pairs_across_groups():
    """Fixed groups never touch the cross-group correlation; shuffled groups
    reduce it on average over iterations (train mode), and their running
    covariance covers every pair, so the eval whitening (full width) makes
    the whole covariance ~I on the training distribution."""
    def run(shuffle, steps=60):
        neck = EigenDecorrelationNeck(in_channels=32, num_groups=4, eps=1e-6,
                                      shuffle_groups=shuffle, momentum=0.1)
        cross = []
        for t in range(steps):
            y = neck((_cross_group_feat(seed=t), ))[0]
            cross.append(_cov(y)[:16, 16:].diagonal().abs().mean())
        return neck, torch.stack(cross).mean()

    fixed, cross_fixed = run(False)
    shuffled, cross_shuffled = run(True)
    assert cross_fixed > 0.9  # untouched: corr(a, a + 0.3 noise) ~ 0.96
    # a pair shares a group 7/31 of the time -> ~0.77x on average
    assert cross_shuffled < 0.85 * cross_fixed
    # Every entry of the running covariance was measured at least once.
    assert (shuffled.running_cov[:16, 16:].diagonal() > 0.5).all()
    assert (fixed.running_cov[:16, 16:] == 0).all()
    fixed.eval()
    shuffled.eval()
    x = torch.cat([_cross_group_feat(seed=100 + i) for i in range(8)])
    eye = torch.eye(32, dtype=torch.double)
    err_shuffled = (_cov(shuffled((x, ))[0]) - eye).abs().max()
    err_fixed = (_cov(fixed((x, ))[0]) - eye).abs().max()
    assert err_shuffled < 0.15 and err_fixed > 0.8


def _ema_of_w_reference(batches, groups, eps, momentum=0.1):
    """The alternative running whitening, an EMA of per-batch W (here only
    to show its bias)."""
    w_run = None
    mean_run = None
    for x in batches:
        moments = grouped_moments(
            x.permute(0, 2, 3, 1).reshape(-1, x.shape[1]), groups)
        mean, cov = moments_to_mean_cov(*moments, eps)
        w = eigh_inv_sqrt(cov)
        if w_run is None:
            w_run = torch.eye(w.shape[-1], dtype=w.dtype).repeat(groups, 1, 1)
            mean_run = torch.zeros_like(mean)
        w_run = (1 - momentum) * w_run + momentum * w
        mean_run = (1 - momentum) * mean_run + momentum * mean
    return mean_run, w_run


def test_running_covariance_unbiased_with_small_batches():
    """Eval-mode output covariance on the training distribution: W from the
    running covariance gives eigenvalues close to 1; an EMA of per-batch W
    (small batches: 2 images x 2 x 2 positions = 8 samples for groups of 4)
    over-whitens badly."""
    c, groups = 16, 4
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(c, c, generator=g) / c**0.5 + torch.eye(c)

    def batch(n):
        x = torch.randn(n * 4, c, generator=g) @ mix
        return x.view(n, 2, 2, c).permute(0, 3, 1, 2).contiguous()

    batches = [batch(2) for _ in range(600)]
    neck = EigenDecorrelationNeck(in_channels=c, num_groups=groups, eps=1e-5,
                                  momentum=0.02)
    for x in batches:
        neck((x, ))
    neck.eval()
    test = batch(2000)
    lam_new = torch.linalg.eigvalsh(_cov(neck((test, ))[0]))
    blocks = lambda cv: torch.stack(  # noqa: E731
        [cv[i * 4:(i + 1) * 4, i * 4:(i + 1) * 4] for i in range(groups)])
    lam_new = torch.linalg.eigvalsh(blocks(_cov(neck((test, ))[0])))
    mean, w = _ema_of_w_reference(batches, groups, 1e-5, momentum=0.02)
    y_old = apply_grouped_whitening(
        test.permute(0, 2, 3, 1).reshape(-1, c).double(), mean, w)
    y_old = y_old.view(2000, 2, 2, c).permute(0, 3, 1, 2)
    lam_old = torch.linalg.eigvalsh(blocks(_cov(y_old)))
    print(f'eval output covariance eigenvalues: running covariance '
          f'[{lam_new.min():.2f}, {lam_new.max():.2f}], EMA of W '
          f'[{lam_old.min():.2f}, {lam_old.max():.2f}]')
    assert 0.8 < lam_new.min() and lam_new.max() < 1.25
    assert lam_old.max() > 2.0


def test_given_permutation_without_update_whitens_like_the_query():
    """A second batch of the same step (MedMoCo's key) passes the step's
    permutation with ``update_stats=False``: same groups, statistics and
    step counter untouched; another permutation gives other groups."""
    neck = EigenDecorrelationNeck(in_channels=32, num_groups=4,
                                  shuffle_groups=True)
    x = _cross_group_feat()
    perm = neck.permutation()
    y_query = neck((x, ), perm=perm)[0]
    state = {k: v.clone() for k, v in neck.state_dict().items()}
    assert int(state['num_batches_tracked']) == 1
    y_key = neck((x, ), perm=perm, update_stats=False)[0]
    torch.testing.assert_close(y_key, y_query, rtol=0, atol=0)
    for k, v in neck.state_dict().items():
        assert torch.equal(v, state[k]), k
    # the next step's permutation (drawn from the advanced counter) differs
    y_next = neck((x, ), update_stats=False)[0]
    assert (y_next - y_query).abs().max() > 0.1

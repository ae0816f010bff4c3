"""Tests of EigenDecorrelationNeck (train/eval, gradients, DDP statistics)."""
import os
import socket
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from medssl.models.necks import EigenDecorrelationNeck
from medssl.models.utils.whitening import zca_whitening_matrix
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


@pytest.mark.parametrize('method', ['eigh', 'newton_schulz'])
def test_train_batch_whitened(method):
    neck = MODELS.build(
        dict(type='EigenDecorrelationNeck', in_channels=32, num_groups=4,
             eps=1e-6, method=method, ns_iters=15))
    neck.train()
    other = torch.randn(8, 16, 6, 6)
    x = _feat()
    out = neck((other, x))
    assert len(out) == 2 and out[0] is other
    assert out[1].shape == x.shape and out[1].dtype == x.dtype
    assert _group_cov_err(out[1], 4) < 1e-3
    # Running buffers moved by `momentum` towards the batch statistic.
    mean, w = zca_whitening_matrix(x.permute(0, 2, 3, 1).reshape(-1, 32), 4,
                                   1e-6, method, 15)
    assert torch.allclose(neck.running_mean, 0.1 * mean.float(), atol=1e-5)
    eye = torch.eye(8).expand(4, 8, 8)
    assert torch.allclose(neck.running_whitening, 0.9 * eye + 0.1 * w.float(),
                          atol=1e-5)


def test_eval_uses_running_statistics_and_folded_conv():
    neck = EigenDecorrelationNeck(in_channels=32, num_groups=4, momentum=1.0)
    neck.train()
    neck((_feat(seed=1), ))  # momentum 1 -> running = this batch's stats
    neck.eval()
    a, b = _feat(seed=2), _feat(seed=3) * 3.0
    ya, yb = neck((a, ))[0], neck((b, ))[0]
    weight, bias = neck.folded_conv_params()
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
    assert set(neck.state_dict()) == {'running_mean', 'running_whitening'}
    assert neck.running_whitening.shape == (2, 8, 8)


@pytest.mark.parametrize('method', ['eigh', 'newton_schulz'])
def test_backward_finite_rank_deficient(method):
    neck = EigenDecorrelationNeck(in_channels=32, num_groups=2,
                                  method=method)
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


def _dist_worker(rank, world, port, tmpdir):
    os.environ['MASTER_ADDR'] = '127.0.0.1'
    os.environ['MASTER_PORT'] = str(port)
    dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.set_num_threads(1)
    full = _feat(n=8, c=16, h=3, w=3, seed=5)
    local = full[rank * 4:(rank + 1) * 4].clone().requires_grad_(True)
    neck = EigenDecorrelationNeck(in_channels=16, num_groups=2, momentum=1.0)
    y = neck((local, ))[0]
    y.pow(3).sum().backward()
    torch.save(
        dict(y=y.detach(), grad=local.grad, rm=neck.running_mean,
             rw=neck.running_whitening), os.path.join(tmpdir, f'{rank}.pt'))
    dist.destroy_process_group()


@pytest.mark.slow
def test_distributed_statistics_equal_global_batch():
    with tempfile.TemporaryDirectory() as tmpdir:
        mp.spawn(_dist_worker, args=(2, _free_port(), tmpdir), nprocs=2)
        res = [torch.load(os.path.join(tmpdir, f'{r}.pt')) for r in range(2)]
    full = _feat(n=8, c=16, h=3, w=3, seed=5).requires_grad_(True)
    neck = EigenDecorrelationNeck(in_channels=16, num_groups=2, momentum=1.0)
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


def test_pooled_statistics_whiten_the_pooled_embedding():
    """stats='pooled': the spatially averaged output (what MoCoV2Neck sees)
    has identity covariance over the batch within groups, while the per-position
    output is the same affine map (a 1x1 conv downstream)."""
    n, c, groups = 64, 16, 4
    x = _feat(n=n, c=c, h=3, w=3, seed=5)
    neck = EigenDecorrelationNeck(in_channels=c, num_groups=groups, eps=1e-6,
                                  stats='pooled', momentum=1.0)
    neck.train()
    y = neck((x, ))[0]
    pooled = y.mean((2, 3))[:, :, None, None]
    assert _group_cov_err(pooled, groups) < 1e-3
    # positions-statistics would not whiten the pooled vectors here
    assert _group_cov_err(x.mean((2, 3))[:, :, None, None], groups) > 0.1
    # the same map, folded into a 1x1 conv, reproduces the train output
    neck.eval()
    weight, bias = neck.folded_conv_params()
    torch.testing.assert_close(F.conv2d(x, weight, bias), y, rtol=1e-4,
                               atol=1e-4)
    with pytest.raises(AssertionError):
        EigenDecorrelationNeck(in_channels=c, num_groups=groups, stats='x')

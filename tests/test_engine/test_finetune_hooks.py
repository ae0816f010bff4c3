"""BNRecalibrationHook (AdaBN) and FrozenBackboneWarmupHook (LP-FT)."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

from medssl.engine.hooks.bn_recalibration_hook import recalibrate_bn
from medssl.engine.hooks.frozen_backbone_warmup_hook import \
    FrozenBackboneWarmupHook


class _Toy(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(1, 3, 1), nn.BatchNorm2d(3))
        self.head = nn.Conv2d(3, 2, 1)
        self.data_preprocessor = lambda data, training: data

    def forward(self, x):
        return self.head(self.backbone(x))


def test_recalibrated_statistics_are_the_target_data_statistics():
    torch.manual_seed(0)
    model = _Toy()
    bn = model.backbone[1]
    bn.running_mean.fill_(5.0)  # statistics of another domain
    bn.running_var.fill_(9.0)
    batches = [dict(inputs=torch.randn(4, 1, 3, 3) * 2 + 1)
               for _ in range(3)]
    used = recalibrate_bn(model, batches, num_batches=2)
    assert used == 2
    with torch.no_grad():
        feats = torch.cat([model.backbone[0](b['inputs']) for b in batches[:2]])
    # cumulative average of the per-batch means (equal batch sizes)
    assert torch.allclose(bn.running_mean, feats.mean((0, 2, 3)), atol=1e-5)
    assert bn.momentum == 0.1 and bn.training  # restored


def _runner(model, it, max_iters=9):
    return SimpleNamespace(model=model, iter=it, max_iters=max_iters)


def test_backbone_frozen_then_trained():
    torch.manual_seed(0)
    model = _Toy()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9,
                          weight_decay=1e-2)
    hook = FrozenBackboneWarmupHook(fraction=1 / 3)
    hook.before_train(_runner(model, 0))
    assert hook.iters == 3
    x = torch.randn(4, 1, 3, 3)
    for it in range(5):
        before = [p.detach().clone() for p in model.backbone.parameters()]
        head_before = model.head.weight.detach().clone()
        model.train()
        hook.before_train_iter(_runner(model, it), it)
        assert model.backbone[1].training == (it >= 3)
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
        changed = any(not torch.equal(a, b) for a, b in
                      zip(before, model.backbone.parameters()))
        assert changed == (it >= 3), it
        assert not torch.equal(head_before, model.head.weight)


def test_hook_arguments_checked():
    with pytest.raises(ValueError):
        FrozenBackboneWarmupHook()
    with pytest.raises(ValueError):
        FrozenBackboneWarmupHook(iters=3, fraction=0.5)
    with pytest.raises(ValueError):
        FrozenBackboneWarmupHook(fraction=1.0)

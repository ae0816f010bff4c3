"""CollapseMonitorHook writes its scalars into the message hub."""
import math
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.model import BaseModel

from medssl.engine.hooks.collapse_monitor_hook import CollapseMonitorHook
from medssl.registry import HOOKS


class _Backbone(torch.nn.Module):

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 32)

    def forward(self, x):
        # a (N, C, 1, 1) "feature map" inside a tuple, like a ResNet
        return (self.fc(x)[:, :, None, None], )


class NeckModel(BaseModel):
    """backbone -> neck, like an SSL model; ``forward`` does the loss."""

    def __init__(self):
        super().__init__()
        self.backbone = _Backbone()
        self.neck = torch.nn.Linear(32, 8)
        self.forward_calls = 0

    def forward(self, inputs, labels=None, mode='loss'):
        self.forward_calls += 1
        z = self.neck(self.backbone(inputs)[0].flatten(1))
        return dict(loss=(z.sum(1, keepdim=True) - labels).pow(2).mean())


def test_registered():
    assert HOOKS.get('CollapseMonitorHook') is CollapseMonitorHook


def test_hook_in_runner_logs_scalars(toy_runner):
    model = NeckModel()
    runner = toy_runner(model,
                        max_iters=4,
                        custom_hooks=[CollapseMonitorHook(interval=2)])
    runner.train()
    hub = runner.message_hub
    for key in ('train/effective_rank', 'train/normalized_std',
                'train/backbone_effective_rank',
                'train/backbone_normalized_std'):
        hist = hub.get_scalar(key)
        # logged at iterations 1 (first), 2 and 4 -> 3 values
        assert len(hist.data[0]) == 3, key
        assert all(math.isfinite(v) for v in hist.data[0])
    # batch 4 -> covariance rank <= 3
    assert 1. <= hub.get_scalar('train/effective_rank').current() <= 3.
    # no extra forward: one per iteration
    assert model.forward_calls == 4
    # hooks removed after training
    assert not model.neck._forward_hooks and not \
        model.backbone._forward_hooks


def test_hook_with_real_moco_model():
    from medssl.registry import MODELS
    from medssl.utils import register_all_modules
    register_all_modules()
    model = MODELS.build(
        dict(type='MoCo',
             queue_len=16,
             feat_dim=16,
             momentum=0.99,
             data_preprocessor=dict(type='SelfSupDataPreprocessor',
                                    mean=[0.5],
                                    std=[0.25],
                                    bgr_to_rgb=False),
             backbone=dict(type='ResNet',
                           depth=18,
                           in_channels=1,
                           out_indices=[4],
                           norm_cfg=dict(type='BN')),
             neck=dict(type='MoCoV2Neck',
                       in_channels=512,
                       hid_channels=64,
                       out_channels=16,
                       with_avg_pool=True),
             head=dict(type='ContrastiveHead',
                       loss=dict(type='mmcls.CrossEntropyLoss'),
                       temperature=0.2)))
    model.train()
    hub = MessageHub.get_instance('test_collapse_monitor_moco')
    runner = SimpleNamespace(model=model, iter=0, message_hub=hub)
    hook = CollapseMonitorHook(interval=10)
    hook.before_train(runner)
    g = torch.Generator().manual_seed(0)
    inputs = [torch.rand(8, 1, 32, 32, generator=g) for _ in range(2)]
    from mmselfsup.structures import SelfSupDataSample
    samples = [SelfSupDataSample() for _ in range(8)]

    bn = model.backbone.bn1
    before = bn.running_mean.clone()
    hook.before_train_iter(runner, 0)
    losses = model.loss(inputs, samples)
    hook.after_train_iter(runner, 0, outputs=losses)
    # the hook did not run the model again: BN stats moved by the one
    # training forward of the query (the key encoder is a separate copy)
    assert not torch.equal(before, bn.running_mean)
    erank = hub.get_scalar('train/effective_rank').current()
    std = hub.get_scalar('train/normalized_std').current()
    assert 1. <= erank <= 7.  # 8 samples -> covariance rank <= 7
    assert 0. < std < 1.
    assert 1. <= hub.get_scalar(
        'train/backbone_effective_rank').current() <= 7.

    # iteration 5 is not logged with interval 10
    runner.iter = 5
    n = len(hub.get_scalar('train/effective_rank').data[0])
    hook.before_train_iter(runner, 5)
    model.loss(inputs, samples)
    hook.after_train_iter(runner, 5)
    assert len(hub.get_scalar('train/effective_rank').data[0]) == n
    hook.after_train(runner)
    assert not model.neck._forward_hooks


def test_compute_on_collapsed_batch():
    z = torch.ones(6, 4)
    out = CollapseMonitorHook.compute({'neck': [z[:3], z[3:]]})
    assert out['normalized_std'] == pytest.approx(0.)
    assert out['effective_rank'] == 0.  # all-zero spectrum


def test_hook_and_report_pool_the_same_way():
    """One pooling rule (medssl.analysis.pooling) for the hook and the
    collapse report: last stage for backbones, first output for necks,
    global average of feature maps."""
    from medssl.analysis.pooling import pool_embedding
    from medssl.engine.hooks.collapse_monitor_hook import (backbone_embedding,
                                                           projector_embedding)
    stage3 = torch.arange(2 * 3 * 2 * 2.).reshape(2, 3, 2, 2)
    stage4 = torch.ones(2, 4, 2, 2) * torch.tensor([1., 2, 3, 4])[:, None,
                                                                  None]
    got = backbone_embedding((stage3, stage4))
    assert torch.equal(got, torch.tensor([[1., 2, 3, 4]] * 2))
    assert torch.equal(got, pool_embedding([stage3, stage4], 'last'))
    proj = torch.randn(2, 5)
    assert torch.equal(projector_embedding((proj, stage4)), proj)
    assert pool_embedding((), 'last') is None
    assert pool_embedding(('x', ), 'first') is None
    with pytest.raises(ValueError, match='pick'):
        pool_embedding(proj, 'middle')

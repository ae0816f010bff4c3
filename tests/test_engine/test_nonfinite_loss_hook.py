"""NonFiniteLossHook: stop naming iteration + term, or skip the update exactly."""
import copy

import pytest
import torch
from toy_models import ToyModel

from medssl.engine.hooks import NonFiniteLossError, NonFiniteLossHook


def test_raise_names_iteration_and_term(toy_runner):
    model = ToyModel(nan_at=2)
    runner = toy_runner(model, max_iters=4,
                        custom_hooks=[NonFiniteLossHook('raise')])
    before = None

    with pytest.raises(NonFiniteLossError) as err:
        runner.train()
    msg = str(err.value)
    assert 'iteration 2' in msg and 'loss_aux=nan' in msg
    assert 'loss_main' not in msg  # the finite term is not blamed
    before = model.linear.weight.detach().clone()
    # weights after the failure are still finite (checked before backward)
    assert torch.isfinite(before).all()


def test_skip_drops_exactly_that_update(toy_runner):
    ref = ToyModel()
    torch.manual_seed(0)
    ref.linear.reset_parameters()
    skipping = copy.deepcopy(ref)
    skipping.nan_at = 3
    hook = NonFiniteLossHook('skip')

    toy_runner(skipping, max_iters=3, custom_hooks=[hook]).train()
    assert hook.skipped_iters == [3]

    # the reference trains the first 2 iterations only: identical weights
    ref_runner = toy_runner(ref, max_iters=2)
    ref_runner.train()
    torch.testing.assert_close(skipping.linear.weight, ref.linear.weight,
                               rtol=0, atol=0)
    torch.testing.assert_close(skipping.linear.bias, ref.linear.bias,
                               rtol=0, atol=0)


def test_bad_option():
    with pytest.raises(ValueError, match='raise'):
        NonFiniteLossHook('ignore')


# ------------------------------------------------ features, eigh, checkpoints
class FeatureModel(ToyModel):
    """``backbone`` (Linear 3->4, output scaled by ``scale`` at forward call
    ``bad_at``) -> ``decorrelation`` (eigh of the 4x4 feature covariance, a
    running-mean buffer like BN/decorrelation statistics) -> linear head."""

    def __init__(self, bad_at=-1, scale=float('nan')):
        super().__init__()
        self.backbone = Backbone()
        self.decorrelation = Eigh()
        self.head = torch.nn.Linear(4, 1)
        self.bad_at, self.scale = bad_at, scale

    def forward(self, inputs, labels=None, mode='loss'):
        self.steps += 1
        bad = int(self.steps.item()) == self.bad_at
        self.backbone.scale = self.scale if bad else 1.
        feat = self.backbone(inputs)
        out = self.head(self.decorrelation(feat))
        return dict(loss_main=((out - labels)**2).mean())


class Backbone(torch.nn.Linear):

    def __init__(self):
        super().__init__(3, 4)
        self.scale = 1.

    def forward(self, x):
        return super().forward(x) * self.scale


class Eigh(torch.nn.Module):

    def __init__(self):
        super().__init__()
        self.register_buffer('running_mean', torch.zeros(4))

    def forward(self, x):
        self.running_mean.mul_(0.9).add_(0.1 * x.detach().mean(0))
        cov = x.T @ x / len(x)
        torch.linalg.eigh(cov.detach())  # fails on inf/NaN like the neck's
        return x - self.running_mean


def test_nonfinite_backbone_feature_stops_before_the_neck(toy_runner):
    model = FeatureModel(bad_at=2)
    runner = toy_runner(model, max_iters=4,
                        custom_hooks=[NonFiniteLossHook('raise')])
    with pytest.raises(NonFiniteLossError) as err:
        runner.train()
    msg = str(err.value)
    assert msg.startswith('non-finite features at iteration 2: module '
                          'backbone (Backbone), output (4, 4) has 16/16')
    # stopped before the decorrelation saw it: its statistics stay finite
    assert torch.isfinite(model.decorrelation.running_mean).all()
    assert torch.isfinite(model.head.weight).all()


def test_eigh_failure_names_iteration_and_module(toy_runner):
    # finite but huge features: the float32 covariance overflows to inf and
    # eigh fails inside the decorrelation, not in the backbone check
    model = FeatureModel(bad_at=3, scale=1e30)
    runner = toy_runner(model, max_iters=4,
                        custom_hooks=[NonFiniteLossHook('raise')])
    with pytest.raises(NonFiniteLossError) as err:
        runner.train()
    msg = str(err.value)
    assert 'linear algebra failure at iteration 3 in module decorrelation ' \
        '(Eigh)' in msg
    assert 'linalg.eigh' in msg and 'max|x|=' in msg
    assert isinstance(err.value.__cause__, torch.linalg.LinAlgError)


def test_skip_restores_buffers_of_the_skipped_iteration(toy_runner):
    ref = FeatureModel()
    torch.manual_seed(0)
    for m in (ref.backbone, ref.head):
        m.reset_parameters()
    skipping = copy.deepcopy(ref)
    skipping.bad_at = 3
    hook = NonFiniteLossHook('skip')
    toy_runner(skipping, max_iters=3, custom_hooks=[hook]).train()
    assert hook.skipped_iters == [3]
    toy_runner(ref, max_iters=2).train()
    # weights AND the running statistics equal 2 clean iterations exactly
    for name, value in ref.state_dict().items():
        torch.testing.assert_close(skipping.state_dict()[name], value,
                                   rtol=0, atol=0, msg=name)


def test_no_checkpoint_with_nonfinite_tensors_is_written(toy_runner,
                                                         tmp_path):
    model = FeatureModel()

    class Poison(NonFiniteLossHook):  # a NaN that slipped past the checks
        def after_train_iter(self, runner, batch_idx, data_batch=None,
                             outputs=None):
            if runner.iter + 1 == 4:
                model.decorrelation.running_mean[1] = float('inf')

    runner = toy_runner(model, max_iters=4, custom_hooks=[Poison('raise')])
    with pytest.raises(NonFiniteLossError) as err:
        runner.train()
    assert str(err.value) == (
        'refusing to write the checkpoint of iteration 4: non-finite tensors '
        'state_dict.decorrelation.running_mean (1/4 non-finite)')
    assert not (tmp_path / 'iter_4.pth').exists()

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

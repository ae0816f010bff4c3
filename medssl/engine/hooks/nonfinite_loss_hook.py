"""Stop (or skip) a training iteration whose loss is NaN or infinite."""
import functools
import math
from typing import Dict, Optional, Tuple

import torch
import torch.distributed as dist
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from medssl.registry import HOOKS

__all__ = ['NonFiniteLossHook', 'NonFiniteLossError']


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN/inf during training."""


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Check every loss term *before* the backward pass.

    A diverged run otherwise writes NaN weights into every later checkpoint.
    The hook wraps the model's ``parse_losses`` (called by
    ``BaseModel.train_step`` between forward and ``update_params``), so it sees
    each term (``loss_global``, ``loss_local``, ...) while the weights are
    still clean, for mmselfsup's ``MoCo`` and medssl's models alike.

    Args:
        on_nonfinite (str): ``'raise'`` stops with :class:`NonFiniteLossError`
            naming the iteration and the term(s); ``'skip'`` drops the update
            of that iteration (no gradient, no optimizer step) and goes on.

    Under DDP the check is all-reduced, so every rank raises or skips
    together instead of hanging in the next collective.
    """

    priority = 'VERY_HIGH'

    def __init__(self, on_nonfinite: str = 'raise') -> None:
        if on_nonfinite not in ('raise', 'skip'):
            raise ValueError("on_nonfinite must be 'raise' or 'skip', got "
                             f'{on_nonfinite!r}')
        self.on_nonfinite = on_nonfinite
        self.skipped_iters = []
        self._skip_step = False

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        parse_losses = model.parse_losses

        def checked_parse_losses(losses: Dict) -> Tuple[torch.Tensor, Dict]:
            loss, log_vars = parse_losses(losses)
            bad = self._bad_terms(log_vars, loss)
            if bad is None:
                return loss, log_vars
            iteration = runner.iter + 1
            terms = ', '.join(f'{k}={v}' for k, v in bad.items())
            if self.on_nonfinite == 'raise':
                raise NonFiniteLossError(
                    f'non-finite loss at iteration {iteration}: {terms}')
            print_log(
                f'skipping iteration {iteration}: non-finite loss {terms}',
                logger='current', level=30)
            self.skipped_iters.append(iteration)
            self._skip_step = True
            # A zero loss that touches every parameter: backward (and DDP's
            # gradient all-reduce) run as usual, with zero gradients.
            zero = sum(p.sum() * 0 for p in model.parameters()
                       if p.requires_grad)
            log_vars = type(log_vars)(
                (k, torch.nan_to_num(torch.as_tensor(v), 0., 0., 0.))
                for k, v in log_vars.items())
            return zero, log_vars

        model.parse_losses = checked_parse_losses
        self._wrap_optimizer_step(runner)

    def _wrap_optimizer_step(self, runner) -> None:
        optim_wrapper = runner.optim_wrapper
        step = optim_wrapper.step

        def guarded_step(**kwargs) -> None:
            if self._skip_step:
                self._skip_step = False
                optim_wrapper.zero_grad()
                return
            step(**kwargs)

        # keep the attributes mmengine's LR schedulers put on `step`
        functools.update_wrapper(guarded_step, step)
        optim_wrapper.step = guarded_step

    @staticmethod
    def _bad_terms(log_vars: Dict[str, float],
                   loss: torch.Tensor) -> Optional[Dict[str, float]]:
        values = {
            k: float(torch.as_tensor(v).detach())
            for k, v in log_vars.items() if 'loss' in k
        }
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        flag = torch.tensor(
            [float(bool(bad) or not torch.isfinite(loss).all())],
            device=loss.device)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if flag.item() == 0:
            return None
        # Another rank diverged: report that, with this rank's values.
        return bad or {'(other rank)': float('nan'), **values}

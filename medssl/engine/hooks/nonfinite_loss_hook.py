"""Stop (or skip) a training iteration whose features or loss are NaN/inf;
never write a checkpoint holding NaN/inf tensors."""
import functools
import math
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from medssl.registry import HOOKS
from medssl.utils.checkpoint import non_finite_entries

__all__ = ['NonFiniteLossHook', 'NonFiniteLossError']


class NonFiniteLossError(FloatingPointError):
    """A feature, a loss term or a checkpoint tensor became NaN/inf during
    training (or a decorrelation's eigh failed)."""


def _tensors(out, name='output'):
    if torch.is_tensor(out):
        yield name, out
    elif isinstance(out, (list, tuple)):
        for i, o in enumerate(out):
            yield from _tensors(o, f'{name}[{i}]')
    elif isinstance(out, dict):
        for k, o in out.items():
            yield from _tensors(o, f'{name}[{k!r}]')


def _sanitize(out):
    if torch.is_tensor(out):
        return torch.nan_to_num(out, 0., 0., 0.) \
            if out.is_floating_point() else out
    if isinstance(out, (list, tuple)):
        return type(out)(_sanitize(o) for o in out)
    return out


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Check features and every loss term *before* the backward pass, and
    every checkpoint before it is written.

    A diverged run otherwise writes NaN weights into every later checkpoint.

    * Features: forward hooks on the watched submodules (every module whose
      attribute name is in ``watch``, e.g. ``backbone``, ``decorrelation``;
      the key encoder's backbone, ``encoder_k.module.0``, feeds the watched
      ``decorrelation``) check their outputs,
      so non-finite backbone features are caught *before* they reach the
      decorrelation (whose eigh would fail on them, and whose running
      statistics and BN's would store them); after the forward the model's
      floating buffers (BN running statistics, decorrelation statistics, the
      MoCo queue) are checked too. A ``torch.linalg.LinAlgError``
      (e.g. eigh not converging) inside a watched module becomes a
      :class:`NonFiniteLossError` naming the iteration and the module.
    * Losses: the model's ``parse_losses`` (called by ``BaseModel.train_step``
      between forward and ``update_params``) is wrapped, so each term
      (``loss_global``, ``loss_local``, ...) is seen while the weights are
      still clean.
    * Checkpoints: ``before_save_checkpoint`` refuses (raises) to write a
      checkpoint whose state dict or optimizer state holds NaN/inf.

    Args:
        on_nonfinite (str): ``'raise'`` stops with :class:`NonFiniteLossError`
            naming the iteration, the module or term(s); ``'skip'`` drops the
            whole update of that iteration (no gradient, no optimizer step,
            buffers such as BN statistics, decorrelation statistics and the
            MoCo queue restored to their values before the iteration --
            non-finite features are zeroed on their way so the forward can
            finish) and goes on. An eigh failure always stops.
        watch (Sequence[str]): attribute names of the submodules whose outputs
            are checked.

    Under DDP the loss check is all-reduced, so every rank raises or skips
    together instead of hanging in the next collective.
    """

    priority = 'VERY_HIGH'

    def __init__(self, on_nonfinite: str = 'raise',
                 watch: Sequence[str] = ('backbone', 'decorrelation',
                                         'neck')) -> None:
        if on_nonfinite not in ('raise', 'skip'):
            raise ValueError("on_nonfinite must be 'raise' or 'skip', got "
                             f'{on_nonfinite!r}')
        self.on_nonfinite = on_nonfinite
        self.watch = tuple(watch)
        self.skipped_iters = []
        self._skip_step = False
        self._bad_feature = None
        self._saved_buffers = None
        self._undo = []

    def _watch_modules(self, runner, model) -> None:
        """Forward hooks + LinAlgError guard on the watched submodules."""
        for name, module in model.named_modules():
            if not name or name.split('.')[-1] not in self.watch:
                continue
            what = f'{name} ({type(module).__name__})'

            def check(mod, inputs, output, what=what):
                for term, t in _tensors(output):
                    if not t.is_floating_point() or torch.isfinite(t).all():
                        continue
                    n = int((~torch.isfinite(t)).sum())
                    msg = (f'non-finite features at iteration '
                           f'{runner.iter + 1}: module {what}, {term} '
                           f'{tuple(t.shape)} has {n}/{t.numel()} NaN/inf '
                           'values')
                    if self.on_nonfinite == 'raise':
                        raise NonFiniteLossError(msg)
                    self._bad_feature = self._bad_feature or msg
                    return _sanitize(output)
                return None

            handle = module.register_forward_hook(check)
            forward = module.forward

            def guarded(*args, _forward=forward, _what=what, **kwargs):
                try:
                    return _forward(*args, **kwargs)
                except torch.linalg.LinAlgError as e:
                    stats = [f'{n} max|x|={float(t.abs().max()):.3g}'
                             for n, t in _tensors(args, 'input')
                             if t.is_floating_point() and t.numel()]
                    raise NonFiniteLossError(
                        f'linear algebra failure at iteration '
                        f'{runner.iter + 1} in module {_what} '
                        f'({", ".join(stats[-1:])}): {type(e).__name__}: '
                        f'{e} -- lower the learning rate or raise the '
                        'decorrelation eps') from e

            module.forward = guarded
            self._undo.append((handle, module))

    def after_run(self, runner) -> None:
        for handle, module in self._undo:
            handle.remove()
            module.__dict__.pop('forward', None)
        self._undo = []

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._bad_feature = None
        if self.on_nonfinite == 'skip':
            model = runner.model.module if is_model_wrapper(
                runner.model) else runner.model
            self._saved_buffers = [(b, b.detach().clone())
                                   for b in model.buffers()]

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        bad = non_finite_entries(checkpoint.get('state_dict', {}),
                                 'state_dict') + non_finite_entries(
                                     checkpoint.get('optimizer', {}),
                                     'optimizer')
        if bad:
            raise NonFiniteLossError(
                f'refusing to write the checkpoint of iteration '
                f'{runner.iter + 1}: non-finite tensors {"; ".join(bad)}')

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        parse_losses = model.parse_losses
        self._watch_modules(runner, model)

        def checked_parse_losses(losses: Dict) -> Tuple[torch.Tensor, Dict]:
            loss, log_vars = parse_losses(losses)
            # statistics the forward wrote (BN running_var, decorrelation,
            # queue) can overflow while the outputs stay finite
            self._bad_feature = self._bad_feature or self._bad_buffer(
                model, runner.iter + 1)
            if self._bad_feature and self.on_nonfinite == 'raise':
                raise NonFiniteLossError(self._bad_feature)
            bad = self._bad_terms(log_vars, loss, self._bad_feature)
            if bad is None:
                return loss, log_vars
            iteration = runner.iter + 1
            terms = ', '.join(f'{k}={v}' for k, v in bad.items())
            if self.on_nonfinite == 'raise':
                raise NonFiniteLossError(
                    f'non-finite loss at iteration {iteration}: {terms}')
            print_log(
                f'skipping iteration {iteration}: non-finite loss {terms}'
                + (f' ({self._bad_feature})' if self._bad_feature else ''),
                logger='current', level=30)
            self.skipped_iters.append(iteration)
            self._skip_step = True
            with torch.no_grad():  # undo what the forward wrote in buffers
                for buf, saved in self._saved_buffers or ():
                    buf.copy_(saved)
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
    def _bad_buffer(model, iteration: int) -> Optional[str]:
        bufs = [(n, b) for n, b in model.named_buffers()
                if b.is_floating_point() and b.numel()]
        if not bufs or torch.stack(
                [torch.isfinite(b).all() for _, b in bufs]).all():
            return None
        bad = non_finite_entries(dict(bufs), limit=3)
        return (f'non-finite buffers after the forward of iteration '
                f'{iteration}: {"; ".join(bad)}')

    @staticmethod
    def _bad_terms(log_vars: Dict[str, float], loss: torch.Tensor,
                   bad_feature: Optional[str] = None
                   ) -> Optional[Dict[str, float]]:
        values = {
            k: float(torch.as_tensor(v).detach())
            for k, v in log_vars.items() if 'loss' in k
        }
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        if bad_feature and not bad:  # features were zeroed (skip mode)
            bad = {'(non-finite features)': float('nan')}
        flag = torch.tensor(
            [float(bool(bad) or not torch.isfinite(loss).all())],
            device=loss.device)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if flag.item() == 0:
            return None
        # Another rank diverged: report that, with this rank's values.
        return bad or {'(other rank)': float('nan'), **values}

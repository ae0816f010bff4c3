"""Checks on a checkpoint before a resume uses any of it: its content is
data, and the load is strict.

mmengine 0.11's ``Runner.resume`` trusts what the file says:

* ``meta['config']`` goes to ``Config.fromstring`` -- which *executes* it as
  Python (to compare ``gpu_ids``);
* ``message_hub.runtime_info['best_ckpt']`` becomes the path the
  ``CheckpointHook`` removes (``rmtree`` for a folder) when the score
  improves, ``keep_ckpt_ids`` the steps of the files it deletes;
* ``meta['iter']`` / ``meta['epoch']`` are taken as they are (``10**9``
  fast-forwards the loader for ever, a negative one trains "[-49/6]");
* the model is loaded with ``strict=False`` (a MoCo checkpoint resumed with
  a decorrelation config leaves the whitening unrestored, a wrong-shape
  ``conv1`` stays random: warnings only), and a different optimizer setup
  ends in a bare ``ValueError``.

:func:`check_resume_checkpoint` runs every check before
:class:`~medssl.utils.resume.SafeRunner` uses the checkpoint; every refusal
is a :class:`CheckpointError` ``<path>: <problem>``.
"""
import os.path as osp
import re
from typing import Dict, List, Optional

import torch
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

from .checkpoint import (CheckpointError, allow_nonfinite_default,
                         non_finite_entries)
from .checkpoint.model_loading import key_mismatches, mismatch_problems
from .checkpoint.resume_lookup import _inside

__all__ = ['check_resume_checkpoint', 'check_model_keys',
           'check_optimizer_state', 'check_runtime_info', 'check_counters']

#: message_hub.runtime_info keys whose value the CheckpointHook uses as a
#: path (and deletes), and key names that look like paths.
PATH_KEY_RE = re.compile(r'best_ckpt.*|.*(ckpt|checkpoint|path|dir|file).*')


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) \
        and value >= 0


def check_counters(meta: dict, path: str, max_iters: Optional[int],
                   max_epochs: Optional[int]) -> None:
    """``meta['iter']`` / ``meta['epoch']`` are integers in
    ``[0, max_iters]`` / ``[0, max_epochs]``; ``meta['seed']`` an int."""
    for key, limit in (('iter', max_iters), ('epoch', max_epochs)):
        if key not in meta:
            raise CheckpointError(f"{path}: meta has no '{key}' counter (not "
                                  'a checkpoint of a training run)')
        value = meta[key]
        if not _is_count(value):
            raise CheckpointError(
                f"{path}: meta['{key}'] = {value!r:.60} is not a "
                'non-negative integer')
        if limit is not None and value > limit:
            raise CheckpointError(
                f"{path}: meta['{key}'] = {value} is beyond this run's "
                f'max_{key}s = {limit} (a checkpoint of a longer schedule, '
                'or a forged counter)')
    seed = meta.get('seed')
    if seed is not None and not (_is_count(seed) and seed < 2**32):
        raise CheckpointError(f"{path}: meta['seed'] = {seed!r:.60} is not "
                              'an integer in [0, 2**32)')


def check_runtime_info(info: dict, path: str, allowed_dirs: List[str],
                       logger=None) -> None:
    """Check (and clean) ``message_hub.runtime_info`` of a checkpoint.

    * ``best_ckpt*`` -- the path the CheckpointHook deletes (``rmtree`` for
      a folder) when the score improves -- must be a ``best_*`` string
      inside one of ``allowed_dirs`` (the work dir, the hook's out_dir);
    * ``keep_ckpt_ids`` -- the steps of the files the hook deletes -- must
      be non-negative integers;
    * any other path-like entry (a key naming a ckpt / path / dir / file,
      e.g. ``last_ckpt``) outside ``allowed_dirs`` is removed (logged):
      mmengine only records them, and a checkpoint copied from another
      machine legitimately holds that machine's paths.

    Anything else is a :class:`CheckpointError` naming ``path``.
    """
    if not isinstance(info, dict):
        raise CheckpointError(f"{path}: message_hub['runtime_info'] is a "
                              f'{type(info).__name__}, not a dict')
    for key, value in list(info.items()):
        if not isinstance(key, str):
            raise CheckpointError(f'{path}: runtime_info key {key!r:.60} is '
                                  'not a string')
        if key == 'keep_ckpt_ids':
            if not isinstance(value, (list, tuple)) or not all(
                    _is_count(v) for v in value):
                raise CheckpointError(
                    f'{path}: runtime_info keep_ckpt_ids = {value!r:.80} is '
                    'not a list of non-negative integers')
            continue
        if not PATH_KEY_RE.fullmatch(key) or value is None:
            continue
        if not isinstance(value, str):
            raise CheckpointError(f'{path}: runtime_info {key} = '
                                  f'{value!r:.60} is not a path string')
        inside = any(_inside(value, d) for d in allowed_dirs)
        if not key.startswith('best_ckpt'):
            if not inside:
                del info[key]
                if logger is not None:
                    logger.warning(f'{path}: runtime_info {key} = '
                                   f'{value!r:.200} is outside the work dir:'
                                   ' dropped')
            continue
        if not inside:
            raise CheckpointError(
                f'{path}: runtime_info {key} = {value!r:.200} lies outside '
                f'the work dir {allowed_dirs[0]}; refusing a checkpoint whose '
                'paths point elsewhere (the checkpoint hook deletes them)')
        if not osp.basename(value).startswith('best_'):
            raise CheckpointError(
                f'{path}: runtime_info {key} = {value!r:.200} is not a '
                'best_*.pth file of the checkpoint hook')


def _strip_module(key: str) -> str:
    return key[7:] if key.startswith('module.') else key


def check_model_keys(model: torch.nn.Module, state: dict, path: str) -> None:
    """Every key of ``model.state_dict()`` (parameters and buffers) is in
    ``state`` with the same shape, and ``state`` has no other key."""
    if not isinstance(state, dict):
        raise CheckpointError(f'{path}: no state_dict to resume the model '
                              'from')
    state = {_strip_module(k): v for k, v in state.items()}
    missing, unexpected, shapes = key_mismatches(model.state_dict(), state)
    problems = mismatch_problems(
        missing, unexpected, shapes,
        f'{len(missing)} model keys missing from it')
    if problems:
        raise CheckpointError(
            f'{path}: cannot resume {type(model).__name__} strictly: ' +
            ' | '.join(problems) + ' (resume needs the config that wrote the '
            'checkpoint; to start a new run from its weights use load_from '
            'without --resume)')


def _optimizer_states(optim_wrapper) -> Dict[str, dict]:
    """``{name: torch optimizer}`` of an OptimWrapper / OptimWrapperDict."""
    from mmengine.optim import OptimWrapperDict
    if isinstance(optim_wrapper, OptimWrapperDict):
        return {k: w.optimizer for k, w in optim_wrapper.items()}
    return {'': optim_wrapper.optimizer}


def check_optimizer_state(optim_wrapper, ckpt_state, path: str) -> None:
    """The checkpoint's optimizer state fits the optimizer built from this
    config: the same param groups with the same number of parameters, and
    per-parameter state tensors (momentum, Adam moments) of each parameter's
    shape."""
    optimizers = _optimizer_states(optim_wrapper)
    if list(optimizers) != ['']:  # OptimWrapperDict: {name: state}
        if not isinstance(ckpt_state, dict) or \
                set(ckpt_state) != set(optimizers):
            raise CheckpointError(
                f'{path}: optimizer state names '
                f'{sorted(ckpt_state) if isinstance(ckpt_state, dict) else ckpt_state!r:.80}'
                f' differ from this config\'s {sorted(optimizers)}')
        states = {k: ckpt_state[k] for k in optimizers}
    else:
        states = {'': ckpt_state}
    for name, optimizer in optimizers.items():
        where = f'optimizer {name}' if name else 'optimizer'
        sd = states[name]
        if not isinstance(sd, dict) or not isinstance(
                sd.get('param_groups'), list) or not isinstance(
                    sd.get('state'), dict):
            raise CheckpointError(f'{path}: {where} state has no '
                                  'param_groups / state')
        groups = optimizer.param_groups
        saved = [len(g.get('params', ())) if isinstance(g, dict) else -1
                 for g in sd['param_groups']]
        built = [len(g['params']) for g in groups]
        if saved != built:
            raise CheckpointError(
                f'{path}: {where} has {len(saved)} param groups with '
                f'{saved} parameters, this config builds {len(built)} with '
                f'{built} (a checkpoint of a different model / optimizer '
                'config: resume needs the config that wrote it)')
        params = [p for g in groups for p in g['params']]
        ids = [i for g in sd['param_groups'] for i in g['params']]
        index = {pid: params[n] for n, pid in enumerate(ids)}
        for pid, st in sd['state'].items():
            if pid not in index or not isinstance(st, dict):
                raise CheckpointError(f'{path}: {where} state for unknown '
                                      f'parameter {pid!r:.40}')
            shape = tuple(index[pid].shape)
            for k, v in st.items():
                if torch.is_tensor(v) and v.dim() > 0 and \
                        tuple(v.shape) != shape:
                    raise CheckpointError(
                        f'{path}: {where} state {k} of parameter {pid} has '
                        f'shape {tuple(v.shape)}, the parameter {shape} (a '
                        'checkpoint of a different model config)')


def check_resume_checkpoint(ckpt: dict, path: str, runner: Runner) -> None:
    """Everything :meth:`SafeRunner.resume` checks before it uses ``ckpt``
    (and ``meta['config']`` removed, never read)."""
    meta = ckpt.get('meta')
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: no 'meta' dict (not a checkpoint of "
                              'a training run: use load_from to start from '
                              'its weights)')
    # config text is code (Config.fromstring executes it): never read.
    # Runner.resume parses meta['config']; mmengine's inferencers parse
    # meta['cfg'] / runtime_info['cfg'] -- the runner keeps its own 'cfg'
    # in the message hub instead of carrying the file's into new checkpoints
    dropped = [k for k in ('config', 'cfg') if meta.pop(k, None) is not None]
    hub = ckpt.get('message_hub')
    if isinstance(hub, dict) and isinstance(hub.get('runtime_info'), dict) \
            and hub['runtime_info'].pop('cfg', None) is not None:
        dropped.append("message_hub.runtime_info['cfg']")
    if dropped:
        runner.logger.info(f'{path}: config text in {", ".join(dropped)} '
                           'ignored (checkpoint content is never executed)')
    check_counters(meta, path, runner.max_iters, runner.max_epochs)
    if not isinstance(hub, dict) or not all(
            isinstance(hub.get(k), dict)
            for k in ('log_scalars', 'runtime_info', 'resumed_keys')):
        raise CheckpointError(f"{path}: no 'message_hub' dict with "
                              'log_scalars / runtime_info / resumed_keys (not '
                              'a checkpoint of a training run)')
    allowed = [runner.work_dir] + [
        h.out_dir for h in runner.hooks
        if type(h).__name__ == 'CheckpointHook'
        and isinstance(getattr(h, 'out_dir', None), str)]
    check_runtime_info(hub.get('runtime_info', {}), path, allowed,
                       runner.logger)
    model = runner.model.module if is_model_wrapper(runner.model) \
        else runner.model
    check_model_keys(model, ckpt.get('state_dict'), path)
    if 'optimizer' in ckpt:
        # built here as Runner.resume builds it (no-op once train() did)
        runner.optim_wrapper = runner.build_optim_wrapper(
            runner.optim_wrapper)
        check_optimizer_state(runner.optim_wrapper, ckpt['optimizer'], path)
    scheds = ckpt.get('param_schedulers')
    if scheds is not None and runner.param_schedulers is not None:
        runner.param_schedulers = runner.build_param_scheduler(
            runner.param_schedulers)
        built = runner.param_schedulers
        n_built = {k: len(v) for k, v in built.items()} \
            if isinstance(built, dict) else len(built)
        n_saved = {k: len(v) for k, v in scheds.items()} \
            if isinstance(scheds, dict) else len(scheds)
        if n_built != n_saved:
            raise CheckpointError(
                f'{path}: {n_saved} parameter schedulers in the checkpoint, '
                f'{n_built} in this config (resume needs the config that '
                'wrote it)')
    bad = non_finite_entries(ckpt.get('optimizer', {}), 'optimizer')
    if bad and not allow_nonfinite_default():
        raise CheckpointError(f'{path}: non-finite optimizer state in '
                              f'{"; ".join(bad)}')

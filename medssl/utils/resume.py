"""Resume that treats checkpoint content as data, and is strict.

mmengine 0.11's ``Runner.resume`` trusts what the file says (executes
``meta['config']``, deletes the paths ``message_hub`` names, takes
``meta['iter']`` as it is, loads the model non-strictly): what is checked
instead is listed in :mod:`medssl.utils.resume_checks`.

:class:`SafeRunner` (what ``tools/train.py`` builds) checks a checkpoint
before any of it is used (:func:`check_resume_checkpoint`), drops
``meta['config']`` unread, loads the model strictly, auto-resumes only from
a complete ``iter_N.pth`` / ``epoch_N.pth`` in the work dir (and says which)
and holds a :class:`~medssl.utils.workdir_lock.WorkDirLock` on the work dir
while it trains. Every refusal is a :class:`CheckpointError` ``<path>:
<problem>``.
"""
import os

import torch
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

from .checkpoint import CheckpointError, find_resume_checkpoint
from .resume_checks import (check_counters, check_model_keys,
                            check_optimizer_state, check_resume_checkpoint,
                            check_runtime_info)
from .workdir_lock import WorkDirLock

__all__ = ['SafeRunner', 'check_resume_checkpoint', 'check_model_keys',
           'check_optimizer_state', 'check_runtime_info', 'check_counters']


class SafeRunner(Runner):
    """mmengine's ``Runner`` with a strict, content-checking resume, an
    auto-resume that only picks complete checkpoints of the work dir, and a
    work dir lock while training (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        work_dir = kwargs.get('work_dir', args[1] if len(args) > 1 else None)
        self._work_dir_lock = None
        # rank 0 only: every rank of a distributed run shares the work dir
        if work_dir is not None and os.environ.get('RANK', '0') in ('0', ''):
            self._work_dir_lock = WorkDirLock(work_dir).acquire()
        self._resuming = None
        try:
            super().__init__(*args, **kwargs)
        except BaseException:
            self._release_lock()
            raise

    def _release_lock(self) -> None:
        if self._work_dir_lock is not None:
            self._work_dir_lock.release()

    def train(self) -> torch.nn.Module:
        try:
            return super().train()
        finally:
            self._release_lock()

    def __del__(self):
        lock = self.__dict__.get('_work_dir_lock')
        if lock is not None:
            lock.release()

    def load_or_resume(self) -> None:
        """Auto-resume (``resume=True`` without ``load_from``) continues from
        :func:`find_resume_checkpoint` -- never from whatever
        ``last_checkpoint`` names -- and logs which file, or that there is
        none."""
        if self._has_loaded:
            return None
        if self._resume and self._load_from is None:
            found = find_resume_checkpoint(self.work_dir)
            if found is None:
                self.logger.info(f'auto-resume: no complete iter_*.pth / '
                                 f'epoch_*.pth in {self.work_dir}: starting '
                                 'from scratch')
                self._resume = False
            else:
                self.logger.info(f'auto-resume: continuing from {found} '
                                 '(newest complete checkpoint in the work '
                                 'dir)')
                self._load_from = found
        elif self._resume:
            self.logger.info(f'resume: continuing from {self._load_from}')
        return super().load_or_resume()

    def resume(self, filename: str, resume_optimizer: bool = True,
               resume_param_scheduler: bool = True,
               map_location='default') -> None:
        """``Runner.resume`` on a checked checkpoint
        (:func:`check_resume_checkpoint` runs in :meth:`load_checkpoint`);
        an optimizer / scheduler that still refuses the state is a
        :class:`CheckpointError` naming the file."""
        self._resuming = str(filename)
        try:
            super().resume(filename, resume_optimizer,
                           resume_param_scheduler, map_location)
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise CheckpointError(
                f'{filename}: cannot resume this config from it: '
                f'{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}'
                ' (resume needs the config that wrote the checkpoint)'
            ) from e
        finally:
            self._resuming = None

    def load_checkpoint(self, filename: str, map_location='cpu',
                        strict: bool = False,
                        revise_keys: list = [(r'^module.', '')]):
        """While resuming: the checks of :func:`check_resume_checkpoint`
        before the hooks or the model see the checkpoint, then a strict
        load. Otherwise (``load_from``) mmengine's non-strict load."""
        if self._resuming is None:
            return super().load_checkpoint(filename, map_location, strict,
                                           revise_keys)
        from mmengine.runner.checkpoint import (_load_checkpoint,
                                                _load_checkpoint_to_model)
        checkpoint = _load_checkpoint(filename, map_location=map_location)
        check_resume_checkpoint(checkpoint, str(filename), self)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(self.model) \
            else self.model
        checkpoint = _load_checkpoint_to_model(model, checkpoint, strict=True,
                                               revise_keys=revise_keys)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

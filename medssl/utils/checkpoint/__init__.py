"""Checkpoint I/O in one place: safe reading, atomic writing, strict loading.

Why: mmengine 0.11 reads every checkpoint with ``torch.load(weights_only=
False)`` -- unpickling a shared checkpoint can run arbitrary code -- and
writes ``iter_N.pth`` straight under its final name, so a kill during the
save leaves a truncated file that ``--resume`` then picks.

One job per module:

* :mod:`.loading` -- :func:`load_checkpoint` reads with
  ``torch.load(weights_only=True)`` inside
  ``torch.serialization.safe_globals`` (:func:`allowed_global_names`):
  exactly the globals mmengine's own checkpoints need beyond plain
  tensors/containers (found with
  ``torch.serialization.get_unsafe_globals_in_checkpoint`` on a pretraining
  and an mmseg checkpoint written by ``tools/train.py``): numpy arrays,
  dtypes and scalars plus mmengine's ``HistoryBuffer`` in ``message_hub``,
  and ``builtins.getattr`` -- but only as ``getattr(HistoryBuffer,
  <statistics method>)``. Anything else is refused with ``CheckpointError:
  <path>: ...`` naming the global; a missing, empty, truncated, text or
  foreign file gives ``CheckpointError: <path>: <what is wrong>`` too. The
  check is never disabled globally.
* :mod:`.content` -- what the file holds is checked too
  (:func:`check_checkpoint_content`): no compressed zip record and no tensor
  larger than its storage (a stride-0 ``expand`` of 4 bytes is not
  materialised into gigabytes), string state-dict keys, finite weights
  (:mod:`.nonfinite`) unless ``MEDSSL_ALLOW_NONFINITE=1``
  (``tools/train.py --allow-nonfinite``).
* :mod:`.mmengine_io` -- :func:`install_checkpoint_io` (called by
  ``register_all_modules``, i.e. by every tool) makes this reader mmengine's
  ``CheckpointLoader`` for local paths and http(s) URLs -- so
  ``Runner.load_checkpoint``, ``--resume``, ``Pretrained`` /
  ``VerifiedPretrained`` init and the analysis tools all read safely -- and
  registers :class:`AtomicLocalBackend` as mmengine's ``local`` file
  backend: every checkpoint is written by
  :func:`medssl.utils.atomic.atomic_write_bytes` (a hidden temporary in the
  same folder, fsynced, then renamed to its name).
* :mod:`.model_loading` -- :func:`load_model_checkpoint`: strict model
  loading naming the missing / unexpected key prefixes (``tools/test.py``,
  ``medssl.apis.inference``).
* :mod:`.resume_lookup` -- :func:`find_resume_checkpoint`: the checkpoint
  ``--resume`` continues from (a complete ``iter_N.pth`` / ``epoch_N.pth``
  of the work dir). The resume itself -- strict, never executing ``meta``
  -- is :class:`medssl.utils.resume.SafeRunner`.
"""
from ..atomic import atomic_write_bytes
from .content import check_checkpoint_content
from .errors import CheckpointError
from .loading import allowed_global_names, load_checkpoint
from .mmengine_io import AtomicLocalBackend, install_checkpoint_io
from .model_loading import extract_state_dict, load_model_checkpoint
from .nonfinite import allow_nonfinite_default, non_finite_entries
from .resume_lookup import find_resume_checkpoint, resume_candidates

__all__ = [
    'CheckpointError', 'allowed_global_names', 'load_checkpoint',
    'extract_state_dict', 'load_model_checkpoint', 'non_finite_entries',
    'atomic_write_bytes', 'AtomicLocalBackend', 'install_checkpoint_io',
    'find_resume_checkpoint', 'resume_candidates', 'check_checkpoint_content',
    'allow_nonfinite_default'
]

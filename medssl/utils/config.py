"""Strict top-level config keys: a misspelt key is an error, not a no-op.

mmengine's ``Runner.from_cfg`` reads a fixed set of top-level keys and
silently ignores every other one, so ``--cfg-options
optim_wraper.optimizer.lr=0.1`` trains with the config's lr. Configs also
define helper variables (``crop_size``, ``data_root``, ``view_pipeline``,
``local_head``, ``decorrelation``, ``hu_windows``, ``max_iters``, ...) used
through ``{{_base_.x}}`` or by name, so "every unknown key is an error" is
not an option. The rule (:func:`check_config_keys`):

1. a ``--cfg-options`` key whose top-level name is neither in the config
   file (its own keys, helper variables included) nor in :data:`KNOWN_KEYS`
   is an error -- command-line options cannot define new helper variables;
2. a top-level key *of the config* that is not in :data:`KNOWN_KEYS` but is
   close to a key mmengine's Runner reads (:data:`RUNNER_KEYS`, ``difflib``
   ratio >= :data:`CUTOFF`, e.g. ``optim_wraper`` vs ``optim_wrapper``) is
   an error: a helper variable never looks like a misspelt Runner key (the
   closest among the shipped configs, ``tta_model`` vs ``model``, is 0.71,
   and ``tta_model`` is itself known). Tool-convention names
   (``*_pipeline``) are not compared: ``view_pipeline`` is a helper.

Both errors say "did you mean ...?". :data:`KNOWN_KEYS` = the arguments of
``mmengine.runner.Runner`` plus what mmengine reads from ``cfg`` elsewhere
and what medssl's tools read (``test_pipeline`` by ``tools/infer_volume.py``
and the data-efficiency tools, mmseg's ``tta_*``).

Keys below the top level: :mod:`medssl.utils.config_schema`.
"""
import difflib
import inspect
from typing import Iterable, Optional

__all__ = ['ConfigKeyError', 'RUNNER_KEYS', 'KNOWN_KEYS', 'CUTOFF',
           'check_config_keys']

#: difflib ratio from which an unknown key counts as a misspelling.
CUTOFF = 0.8
#: mmengine Config / Runner keys outside ``Runner.__init__``'s arguments
_MMENGINE = {
    '_base_', 'custom_imports', 'runner_type', 'model_wrapper_cfg',
    'find_unused_parameters', 'gpu_ids', 'compile', 'strategy',
}
#: read by medssl's / mmseg's tools
_TOOLS = {'test_pipeline', 'train_pipeline', 'tta_model', 'tta_pipeline'}


class ConfigKeyError(KeyError):
    """An unknown / misspelt top-level config key."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def _runner_keys() -> frozenset:
    from mmengine.runner import Runner
    params = set(inspect.signature(Runner.__init__).parameters) - {'self'}
    return frozenset(params | _MMENGINE)


RUNNER_KEYS = _runner_keys()
KNOWN_KEYS = RUNNER_KEYS | _TOOLS


def _suggest(key: str, candidates: Iterable[str],
             cutoff: float = 0.6) -> str:
    best = difflib.get_close_matches(key, sorted(candidates), n=1,
                                     cutoff=cutoff)
    return f"; did you mean '{best[0]}'?" if best else ''


def check_config_keys(file_keys: Iterable[str],
                      cfg_options: Optional[dict] = None,
                      source: str = 'config') -> None:
    """Raise :class:`ConfigKeyError` for an unknown top-level key.

    Args:
        file_keys: top-level keys of the config as loaded from its file
            (before ``--cfg-options`` are merged).
        cfg_options: the ``--cfg-options`` dict (``'a.b.c': value``).
        source: the config path, for the message.
    """
    file_keys = set(file_keys)
    for option in (cfg_options or {}):
        top = option.split('.')[0]
        if top not in file_keys and top not in KNOWN_KEYS:
            raise ConfigKeyError(
                f"--cfg-options {option}: unknown top-level key '{top}' "
                f'(neither in {source} nor read by the Runner or the tools)'
                + _suggest(top, KNOWN_KEYS | file_keys))
    for key in sorted(file_keys - KNOWN_KEYS):
        near = difflib.get_close_matches(key, sorted(RUNNER_KEYS), n=1,
                                         cutoff=CUTOFF)
        if near:
            raise ConfigKeyError(
                f"{source}: top-level key '{key}' is not read by the Runner "
                f"or the tools; did you mean '{near[0]}'?")

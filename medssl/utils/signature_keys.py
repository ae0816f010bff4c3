"""Keyword arguments a registered class accepts, from its signatures.

mmengine builds ``dict(type=X, **kwargs)`` by calling ``X(**kwargs)``, so
the names ``X.__init__`` takes (with its parents') are the keys its dict
may hold. A class whose ``__init__`` takes ``**kwargs`` accepts any key,
unless its source forwards them to ``super().__init__`` -- then the
parent's arguments are the rest of the schema (mmseg heads ->
``BaseDecodeHead``, scheduler mixins -> the parameter scheduler) -- or it
is listed in :data:`CLOSED_KWARGS` (classes that pass ``**kwargs`` where
every name is already taken). :mod:`.config_schema` checks configs with it.
"""
import functools
import inspect
import re
from typing import Any, Callable, Optional

__all__ = ['accepted_keys', 'CLOSED_KWARGS']

#: ``**kwargs`` of these classes go to a call whose every argument is
#: already set by the class: any extra key is an error there (at the first
#: checkpoint save for ``CheckpointHook``, after hours of training).
CLOSED_KWARGS = frozenset({'CheckpointHook'})
_KW = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _forwards_kwargs(init: Callable, name: str) -> bool:
    """Whether ``init``'s source passes ``**name`` on to the parent's
    ``__init__`` (``super().__init__(..., **kwargs)``)."""
    try:
        src = inspect.getsource(init)
    except (OSError, TypeError):
        return False
    return re.search(r'super\([^)]*\)\s*\.\s*__init__\((?:[^()]|\([^()]*\))*'
                     r'\*\*' + re.escape(name) + r'\b', src) is not None


@functools.lru_cache(maxsize=None)
def accepted_keys(obj: Any) -> Optional[frozenset]:
    """Keyword arguments a registered class (or function) accepts, or None
    when it accepts any (``**kwargs`` not forwarded to a parent)."""
    if not inspect.isclass(obj):
        try:
            params = inspect.signature(obj).parameters
        except (TypeError, ValueError):
            return None
        if any(p.kind == p.VAR_KEYWORD for p in params.values()):
            return None
        return frozenset(n for n, p in params.items() if p.kind in _KW)
    names = set()
    for klass in obj.__mro__:
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        if klass is object:  # no __init__ of its own: takes no argument
            return frozenset(names - {'self'})
        try:
            params = inspect.signature(init).parameters
        except (TypeError, ValueError):
            return None
        names |= {n for n, p in params.items() if p.kind in _KW}
        var_kw = [p.name for p in params.values() if p.kind == p.VAR_KEYWORD]
        if not var_kw or obj.__name__ in CLOSED_KWARGS:
            return frozenset(names - {'self'})
        if not _forwards_kwargs(init, var_kw[0]):
            return None
    return None

"""Compatibility shim for ``mmcv-lite`` (mmcv without compiled ops).

Why this module exists
----------------------
mmsegmentation 1.2.2 imports a few compiled ops eagerly (``san_head.py``,
``losses/focal_loss.py``, ``models/utils/point_sample.py``,
``utils/mask_classification.py``), so ``import mmseg.models`` fails with
mmcv-lite because ``mmcv._ext`` (the C++/CUDA extension) does not exist.
Nothing medssl uses needs those ops.

What it does
------------
If -- and only if -- the real extension cannot be found, it registers a
placeholder module ``mmcv._ext`` whose attributes are functions that raise a
clear :class:`NotImplementedError` naming the op *when called*. Importing
works; calling a compiled op tells the user which op needs a full mmcv build.
A user who installs full mmcv gets the real ops: :func:`install_mmcv_ext_shim`
then does nothing.

Pure-PyTorch ops of ``mmcv.ops`` (e.g. ``point_sample``) keep working.
"""
import importlib.machinery
import importlib.util
import sys
import types
from typing import Callable

PLACEHOLDER_NAME = 'mmcv._ext'


class CompiledOpUnavailableError(NotImplementedError):
    """Raised when a compiled mmcv op is called under mmcv-lite."""


def _placeholder(op_name: str) -> Callable:

    def _raise(*args, **kwargs):
        raise CompiledOpUnavailableError(
            f"mmcv compiled op '{op_name}' is not available: medssl runs on "
            'mmcv-lite (no compiled ops). Install a full mmcv build '
            '(`pip install mmcv==2.0.1` with a matching compiler/CUDA) to '
            'use the model that needs it.')

    _raise.__name__ = op_name
    return _raise


class _ExtPlaceholder(types.ModuleType):
    """Module whose every attribute is a raising placeholder op."""

    is_medssl_placeholder = True

    def __getattr__(self, name: str) -> Callable:
        if name.startswith('__'):
            raise AttributeError(name)
        return _placeholder(name)


def real_mmcv_ext_available() -> bool:
    """True when a compiled ``mmcv._ext`` is importable."""
    if PLACEHOLDER_NAME in sys.modules:
        mod = sys.modules[PLACEHOLDER_NAME]
        return not getattr(mod, 'is_medssl_placeholder', False)
    # Look for mmcv/_ext*.so without importing mmcv (``find_spec`` of a
    # submodule imports its package, i.e. torch: seconds on every
    # ``import medssl``, even for a tool's --help).
    try:
        package = importlib.util.find_spec('mmcv')
    except (ImportError, ValueError):
        return False
    if package is None or not package.submodule_search_locations:
        return False
    return importlib.machinery.PathFinder.find_spec(
        PLACEHOLDER_NAME, package.submodule_search_locations) is not None


def install_mmcv_ext_shim() -> bool:
    """Register the placeholder ``mmcv._ext`` if the real one is missing.

    Returns:
        bool: True if the placeholder is (now) in use, False if the real
        compiled extension is available.
    """
    if real_mmcv_ext_available():
        return False
    if PLACEHOLDER_NAME not in sys.modules:
        placeholder = _ExtPlaceholder(PLACEHOLDER_NAME)
        # importlib.util.find_spec raises ValueError for a module in
        # sys.modules without a spec; mmengine calls it (mmcv_full_available)
        # and then only imports mmcv.ops classes for isinstance checks, which
        # works with the placeholder.
        placeholder.__spec__ = importlib.machinery.ModuleSpec(
            PLACEHOLDER_NAME, loader=None)
        sys.modules[PLACEHOLDER_NAME] = placeholder
    return True

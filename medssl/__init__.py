"""medssl: self-supervised pretraining on medical CT slices (OpenMMLab style)."""
from .utils.compat import install_mmcv_ext_shim

# Must run before anything imports mmseg: mmseg imports compiled mmcv ops eagerly.
install_mmcv_ext_shim()

from .version import __version__  # noqa: E402

__all__ = ['__version__']

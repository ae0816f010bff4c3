from .compat import install_mmcv_ext_shim, real_mmcv_ext_available
from .setup_env import register_all_modules

__all__ = ['install_mmcv_ext_shim', 'real_mmcv_ext_available',
           'register_all_modules']

from .linear_probe_head import *  # noqa: F401,F403
from .local_patch_contrastive_head import *  # noqa: F401,F403

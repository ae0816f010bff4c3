from .verified_pretrained import *  # noqa: F401,F403
from .whitened_resnet import *  # noqa: F401,F403

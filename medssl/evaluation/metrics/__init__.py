from .volume_dice import *  # noqa: F401,F403
from .volume_measures import *  # noqa: F401,F403

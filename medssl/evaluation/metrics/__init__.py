from .volume_dice import *  # noqa: F401,F403

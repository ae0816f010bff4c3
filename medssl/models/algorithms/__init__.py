from .med_moco import *  # noqa: F401,F403

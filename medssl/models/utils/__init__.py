from .whitening import *  # noqa: F401,F403

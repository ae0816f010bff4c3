from .effective_rank_loss import *  # noqa: F401,F403

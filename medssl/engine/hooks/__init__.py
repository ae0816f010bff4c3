from .collapse_monitor_hook import *  # noqa: F401,F403
from .nonfinite_loss_hook import *  # noqa: F401,F403

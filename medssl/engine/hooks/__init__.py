from .bn_recalibration_hook import *  # noqa: F401,F403
from .collapse_monitor_hook import *  # noqa: F401,F403
from .frozen_backbone_warmup_hook import *  # noqa: F401,F403
from .nonfinite_loss_hook import *  # noqa: F401,F403

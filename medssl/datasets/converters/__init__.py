from .abdomen1k import *  # noqa: F401,F403
from .btcv import *  # noqa: F401,F403
from .common import *  # noqa: F401,F403
from .run import *  # noqa: F401,F403

from .abdomen1k import *  # noqa: F401,F403
from .btcv import *  # noqa: F401,F403
from .ct_slice import *  # noqa: F401,F403
from .transforms import *  # noqa: F401,F403

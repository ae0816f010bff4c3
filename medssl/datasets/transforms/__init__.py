from .intensity import *  # noqa: F401,F403
from .loading import *  # noqa: F401,F403
from .views import *  # noqa: F401,F403

from .eigen_decorrelation_neck import *  # noqa: F401,F403
from .local_projection_neck import *  # noqa: F401,F403

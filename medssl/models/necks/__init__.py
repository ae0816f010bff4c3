from .eigen_decorrelation_neck import *  # noqa: F401,F403

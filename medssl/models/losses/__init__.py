from .spectral_decorrelation_loss import *  # noqa: F401,F403

"""FrozenBackboneWarmupHook: fit the new head on a frozen pretrained
backbone first, then fine-tune everything (LP-FT, Kumar et al., "Fine-Tuning
can Distort Pretrained Features and Underperform Out-of-Distribution",
ICLR 2022)."""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from medssl.registry import HOOKS

__all__ = ['FrozenBackboneWarmupHook']


@HOOKS.register_module()
class FrozenBackboneWarmupHook(Hook):
    """Keep ``model.backbone`` frozen (no gradient, BatchNorm in eval mode)
    for the first ``iters`` training iterations.

    Why: the randomly initialised decode head sends large, noisy gradients
    into the backbone at the start of fine-tuning and can wipe out what
    pretraining learned before the head is any good; with the head fitted
    first, the backbone's updates start from a sensible loss.

    The optimizer is built with every parameter, so nothing else changes
    when the backbone thaws (frozen parameters have no gradient: SGD skips
    them and applies no weight decay).

    Under DDP the wrapper needs ``find_unused_parameters=True`` (the frozen
    backbone has no gradient).

    Args:
        iters: iterations with the backbone frozen (0 disables the hook), or
        fraction: that many iterations as a fraction of ``max_iters`` (so a
            schedule shortened from the command line keeps its proportion).
    """

    priority = 'NORMAL'

    def __init__(self, iters: Optional[int] = None,
                 fraction: Optional[float] = None) -> None:
        if (iters is None) == (fraction is None):
            raise ValueError('give exactly one of iters and fraction')
        if iters is not None and iters < 0:
            raise ValueError(f'iters must be >= 0, got {iters}')
        if fraction is not None and not 0 <= fraction < 1:
            raise ValueError(f'fraction must be in [0, 1), got {fraction}')
        self.iters = iters
        self.fraction = fraction

    def before_train(self, runner) -> None:
        if self.fraction is not None:
            self.iters = int(round(self.fraction * runner.max_iters))

    @staticmethod
    def _backbone(runner):
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        return model.backbone

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        backbone = self._backbone(runner)
        frozen = runner.iter < self.iters
        backbone.requires_grad_(not frozen)
        if frozen:
            backbone.eval()  # the loop put the model in train mode
        elif runner.iter == self.iters:
            backbone.train()

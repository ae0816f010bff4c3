"""FrozenBackboneWarmupHook: fit the new head on a frozen pretrained
backbone first, then fine-tune everything (LP-FT, Kumar et al., "Fine-Tuning
can Distort Pretrained Features and Underperform Out-of-Distribution",
ICLR 2022)."""
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

    Args:
        iters: iterations with the backbone frozen. 0 disables the hook.
    """

    priority = 'NORMAL'

    def __init__(self, iters: int) -> None:
        if iters < 0:
            raise ValueError(f'iters must be >= 0, got {iters}')
        self.iters = iters

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

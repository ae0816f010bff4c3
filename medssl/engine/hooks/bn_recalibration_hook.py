"""BNRecalibrationHook: re-estimate the backbone's BatchNorm statistics on
the target data before fine-tuning (AdaBN, Li et al. 2016/2018)."""
from typing import Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch.nn.modules.batchnorm import _BatchNorm

from medssl.registry import HOOKS

__all__ = ['BNRecalibrationHook']


@HOOKS.register_module()
class BNRecalibrationHook(Hook):
    """Before the first fine-tuning step, forward ``num_batches`` training
    batches through the backbone (no gradient) and replace the running mean
    and variance of its BatchNorm layers by their cumulative average on
    those batches.

    Why: a pretrained backbone brings the running statistics of the
    pretraining data (other crops, other intensity augmentations); the
    segmentation model normalises with them at evaluation until the
    fine-tuning momentum has replaced them.

    Args:
        num_batches: training batches averaged. Defaults to 20.
    """

    priority = 'LOW'  # after weight initialisation / checkpoint loading

    def __init__(self, num_batches: int = 20) -> None:
        if num_batches < 1:
            raise ValueError(f'num_batches must be >= 1, got {num_batches}')
        self.num_batches = num_batches

    def before_train(self, runner) -> None:
        if runner.iter > 0:  # resumed: statistics come from the checkpoint
            return
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        # A loader of its own: the training loader's InfiniteSampler holds
        # one shared index generator that a second iterator would disturb.
        train = runner.train_dataloader
        gen = torch.Generator().manual_seed(runner.seed or 0)
        loader = torch.utils.data.DataLoader(
            train.dataset, batch_size=train.batch_size, shuffle=True,
            collate_fn=train.collate_fn, generator=gen, num_workers=0)
        recalibrate_bn(model, loader, self.num_batches)


@torch.no_grad()
def recalibrate_bn(model, dataloader, num_batches: int,
                   module: Optional[torch.nn.Module] = None) -> int:
    """Cumulative BN statistics of ``module`` (default ``model.backbone``)
    over ``num_batches`` batches of ``dataloader``; returns the batches
    used."""
    module = model.backbone if module is None else module
    bns = [m for m in module.modules() if isinstance(m, _BatchNorm)]
    saved = [(m.momentum, m.training) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
        m.train()
    used = 0
    for data in dataloader:
        data = model.data_preprocessor(data, True)
        module(data['inputs'])
        used += 1
        if used >= num_batches:
            break
    for m, (momentum, training) in zip(bns, saved):
        m.momentum = momentum
        m.train(training)
    return used

"""A toy model and dataset for engine tests (no data files)."""
import torch
from mmengine.model import BaseModel
from torch.utils.data import Dataset


class ToyModel(BaseModel):
    """Linear regression; ``nan_at`` makes the loss NaN at that forward call."""

    def __init__(self, nan_at: int = -1):
        super().__init__()
        self.linear = torch.nn.Linear(3, 1)
        self.register_buffer('steps', torch.zeros(1))
        self.nan_at = nan_at

    def forward(self, inputs, labels=None, mode='loss'):
        self.steps += 1
        err = ((self.linear(inputs) - labels)**2).mean()
        aux = err * 0.1
        if int(self.steps.item()) == self.nan_at:
            aux = aux * float('nan')
        return dict(loss_main=err, loss_aux=aux)


class ToyData(Dataset):

    def __len__(self):
        return 64

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return dict(inputs=torch.randn(3, generator=g), labels=torch.ones(1))




def make_toy_runner(work_dir, model, max_iters=3, ckpt_interval=None,
                    momentum=0.9, **kwargs):
    """An mmengine Runner training ``model`` on :class:`ToyData` for
    ``max_iters`` iterations, a checkpoint every ``ckpt_interval``
    (default: at the end)."""
    from mmengine.runner import Runner
    return Runner(
        model=model,
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=ToyData(), batch_size=4,
            collate_fn=dict(type='default_collate'),
            sampler=dict(type='DefaultSampler', shuffle=False)),
        optim_wrapper=dict(
            optimizer=dict(type='SGD', lr=0.1, momentum=momentum)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(
            type='CheckpointHook', interval=ckpt_interval or max_iters,
            by_epoch=False)),
        default_scope='medssl',
        **kwargs)

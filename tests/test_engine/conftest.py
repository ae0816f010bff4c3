"""Runner factory for engine tests (no data files)."""
import pytest
from mmengine.runner import Runner
from toy_models import ToyData


@pytest.fixture
def toy_runner(tmp_path):
    """``toy_runner(model, max_iters=3, **runner_kwargs) -> Runner``."""

    def make(model, max_iters=3, **kwargs):
        return Runner(
            model=model,
            work_dir=str(tmp_path),
            train_dataloader=dict(
                dataset=ToyData(), batch_size=4,
                collate_fn=dict(type='default_collate'),
                sampler=dict(type='DefaultSampler', shuffle=False)),
            optim_wrapper=dict(
                optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
            train_cfg=dict(by_epoch=False, max_iters=max_iters),
            default_hooks=dict(checkpoint=dict(
                type='CheckpointHook', interval=max_iters, by_epoch=False)),
            default_scope='medssl',
            **kwargs)

    return make

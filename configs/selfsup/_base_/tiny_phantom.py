# The CPU smoke setting every *_phantom pretraining config shares (their
# models only shrink to ResNet-18 sizes): phantom slices, 64x64 views, batch
# 4, a few iterations, a log line every iteration.
_base_ = [
    './datasets/abdomen1k_ct_phantom.py',
    './schedules/sgd_coslr-tiny_phantom.py',
    './default_runtime.py',
]
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(interval=3, by_epoch=False))
log_processor = dict(by_epoch=False)
# Iteration-based: an InfiniteSampler never ends an epoch (mmengine's
# DefaultSampler makes the loader sleep 2 s at every epoch end, about half the
# wall time on a 112-slice phantom set).
train_dataloader = dict(sampler=dict(type='InfiniteSampler', shuffle=True))

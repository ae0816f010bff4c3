# SimCLR, ResNet-18, a few CPU iterations on phantom slices.
_base_ = [
    './_base_/simclr_r50_ct.py',
    '../_base_/datasets/abdomen1k_ct_phantom.py',
    '../_base_/schedules/sgd_coslr-tiny_phantom.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(depth=18),
    neck=dict(in_channels=512, hid_channels=512))
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(interval=3, by_epoch=False))
log_processor = dict(by_epoch=False)
custom_hooks = [
    dict(type='NonFiniteLossHook', on_nonfinite='raise'),
    dict(type='CollapseMonitorHook', interval=2),
]

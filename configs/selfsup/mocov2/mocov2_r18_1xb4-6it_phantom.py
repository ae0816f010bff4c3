# Baseline MoCo v2, ResNet-18, a few CPU iterations on phantom slices.
_base_ = [
    '../_base_/models/mocov2_r50_ct.py',
    '../_base_/datasets/abdomen1k_ct_phantom.py',
    '../_base_/schedules/sgd_coslr-tiny_phantom.py',
    '../_base_/default_runtime.py',
]
model = dict(
    queue_len=64,
    backbone=dict(depth=18),
    neck=dict(in_channels=512, hid_channels=512))
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(interval=3, by_epoch=False))
log_processor = dict(by_epoch=False)

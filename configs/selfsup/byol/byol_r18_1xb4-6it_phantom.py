# BYOL, ResNet-18, a few CPU iterations on phantom slices.
_base_ = [
    './_base_/byol_r50_ct.py',
    '../_base_/datasets/abdomen1k_ct_phantom.py',
    '../_base_/schedules/sgd_coslr-tiny_phantom.py',
    '../_base_/default_runtime.py',
]
model = dict(
    backbone=dict(depth=18),
    neck=dict(in_channels=512, hid_channels=256, out_channels=64),
    head=dict(
        predictor=dict(in_channels=64, hid_channels=256, out_channels=64)))
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(interval=3, by_epoch=False))
log_processor = dict(by_epoch=False)

# Baseline MoCo v2, ResNet-18, a few CPU iterations on phantom slices.
_base_ = ['../_base_/models/mocov2_r50_ct.py', '../_base_/tiny_phantom.py']
model = dict(
    queue_len=64,
    backbone=dict(depth=18),
    neck=dict(in_channels=512, hid_channels=512))

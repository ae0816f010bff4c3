# Barlow Twins, ResNet-18, a few CPU iterations on phantom slices.
_base_ = ['./_base_/barlowtwins_r50_ct.py', '../_base_/tiny_phantom.py']
model = dict(
    backbone=dict(depth=18),
    neck=dict(in_channels=512, hid_channels=256, out_channels=256),
    head=dict(in_channels=256))

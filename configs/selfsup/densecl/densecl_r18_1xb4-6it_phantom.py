# DenseCL, ResNet-18, a few CPU iterations on phantom slices.
_base_ = ['./_base_/densecl_r50_ct.py', '../_base_/tiny_phantom.py']
model = dict(
    queue_len=64,  # a multiple of the global batch (4 per process x 1 or 2)
    backbone=dict(depth=18),
    neck=dict(in_channels=512, hid_channels=512))
find_unused_parameters = True

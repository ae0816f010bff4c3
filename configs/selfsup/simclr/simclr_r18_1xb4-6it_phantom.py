# SimCLR, ResNet-18, a few CPU iterations on phantom slices.
_base_ = ['./_base_/simclr_r50_ct.py', '../_base_/tiny_phantom.py']
model = dict(
    backbone=dict(depth=18),
    neck=dict(in_channels=512, hid_channels=512))
custom_hooks = [
    dict(type='NonFiniteLossHook', on_nonfinite='raise'),
    dict(type='CollapseMonitorHook', interval=2),
]

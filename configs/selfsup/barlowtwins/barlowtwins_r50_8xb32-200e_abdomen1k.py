# Baseline: Barlow Twins (mmselfsup's BarlowTwins) on AbdomenCT-1K slices.
_base_ = [
    './_base_/barlowtwins_r50_ct.py',
    '../_base_/datasets/abdomen1k_ct.py',
    '../_base_/schedules/lars_coslr-200e_abdomen1k.py',
    '../_base_/default_runtime.py',
]
# LARS as in Barlow Twins: lr 0.2 x batch / 256 for weights (here 256) and
# 0.0048 x batch / 256 for BN/biases (lr_mult 0.024), wd 1.5e-6.
optim_wrapper = dict(
    optimizer=dict(lr=0.2, weight_decay=1.5e-6),
    paramwise_cfg=dict(
        custom_keys={
            'bn': dict(decay_mult=0, lr_mult=0.024, lars_exclude=True),
            'bias': dict(decay_mult=0, lr_mult=0.024, lars_exclude=True),
            'downsample.1': dict(
                decay_mult=0, lr_mult=0.024, lars_exclude=True),
        }))

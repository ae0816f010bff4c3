# Baseline: SimCLR (mmselfsup's SimCLR) on AbdomenCT-1K slices, 8 x 32.
_base_ = [
    './_base_/simclr_r50_ct.py',
    '../_base_/datasets/abdomen1k_ct.py',
    '../_base_/schedules/sgd_coslr-200e_abdomen1k.py',
    '../_base_/default_runtime.py',
]
# LARS as in SimCLR: lr 0.3 x batch / 256 (here 256), wd 1e-6, no decay and
# no LARS adaptation for BN and biases.
optimizer = dict(type='LARS', lr=0.3, momentum=0.9, weight_decay=1e-6)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=optimizer,
    paramwise_cfg=dict(
        custom_keys={
            'bn': dict(decay_mult=0, lars_exclude=True),
            'bias': dict(decay_mult=0, lars_exclude=True),
            'downsample.1': dict(decay_mult=0, lars_exclude=True),
        }))
# 10 warm-up epochs (large-batch LARS recipes), then cosine to 0.
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=10,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=190,
        by_epoch=True,
        begin=10,
        end=200,
        convert_to_iter_based=True)
]

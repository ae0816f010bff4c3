# Baseline: SimCLR (mmselfsup's SimCLR) on AbdomenCT-1K slices, 8 x 32.
_base_ = [
    './_base_/simclr_r50_ct.py',
    '../_base_/datasets/abdomen1k_ct.py',
    '../_base_/schedules/lars_coslr-200e_abdomen1k.py',
    '../_base_/default_runtime.py',
]
# LARS as in SimCLR: lr 0.3 x batch / 256 (here 256), wd 1e-6.
optim_wrapper = dict(optimizer=dict(lr=0.3, weight_decay=1e-6))

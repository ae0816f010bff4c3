# Baseline: BYOL (mmselfsup's BYOL) on AbdomenCT-1K slices, 8 x 32.
_base_ = [
    './_base_/byol_r50_ct.py',
    '../_base_/datasets/abdomen1k_ct.py',
    '../_base_/schedules/lars_coslr-200e_abdomen1k.py',
    '../_base_/default_runtime.py',
]
# LARS as in BYOL: base lr 0.2 x batch / 256 (here 256), wd 1.5e-6.
optim_wrapper = dict(optimizer=dict(lr=0.2, weight_decay=1.5e-6))

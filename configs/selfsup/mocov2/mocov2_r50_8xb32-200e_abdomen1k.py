# Baseline: MoCo v2 (mmselfsup's MoCo) on AbdomenCT-1K slices.
_base_ = [
    '../_base_/models/mocov2_r50_ct.py',
    '../_base_/datasets/abdomen1k_ct.py',
    '../_base_/schedules/sgd_coslr-200e_abdomen1k.py',
    '../_base_/default_runtime.py',
]

# Baseline: DenseCL (mmselfsup's DenseCL) on AbdomenCT-1K slices, 8 x 32,
# with the MoCo v2 schedule (SGD lr 0.03, wd 1e-4, cosine) like the paper.
_base_ = [
    './_base_/densecl_r50_ct.py',
    '../_base_/datasets/abdomen1k_ct.py',
    '../_base_/schedules/sgd_coslr-200e_abdomen1k.py',
    '../_base_/default_runtime.py',
]
find_unused_parameters = True

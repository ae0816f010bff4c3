# The full method of Hassanpour et al. (ISBI 2024): MoCo v2 + local + decorrelation.
_base_ = [
    '../_base_/models/medmoco_r50_ct.py',
    '../_base_/datasets/abdomen1k_ct.py',
    '../_base_/schedules/sgd_coslr-200e_abdomen1k.py',
    '../_base_/default_runtime.py',
]
model = dict(
    local_neck={{_base_.local_neck}},
    local_head={{_base_.local_head}},
    decorrelation={{_base_.decorrelation}},
    decorrelation_loss={{_base_.decorrelation_loss}})

# MoCo v2 + local patch contrast on layer3 feature maps (lambda = 0.5).
_base_ = [
    '../_base_/models/medmoco_r50_ct.py',
    '../_base_/datasets/abdomen1k_ct.py',
    '../_base_/schedules/sgd_coslr-200e_abdomen1k.py',
    '../_base_/default_runtime.py',
]
model = dict(local_neck={{_base_.local_neck}}, local_head={{_base_.local_head}})

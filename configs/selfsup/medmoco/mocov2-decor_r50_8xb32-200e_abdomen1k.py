# MoCo v2 + eigendecomposition (ZCA) decorrelation before the projector.
_base_ = [
    '../_base_/models/medmoco_r50_ct.py',
    '../_base_/datasets/abdomen1k_ct.py',
    '../_base_/schedules/sgd_coslr-200e_abdomen1k.py',
    '../_base_/default_runtime.py',
]
model = dict(
    decorrelation={{_base_.decorrelation}},
    decorrelation_loss={{_base_.decorrelation_loss}})

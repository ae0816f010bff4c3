# Tiny CPU twin of mocov2-decor_r50_8xb32-200e_abdomen1k.py.
_base_ = ['../_base_/models/medmoco_r18_ct_tiny.py', '../_base_/tiny_phantom.py']
model = dict(
    decorrelation={{_base_.decorrelation}},
    decorrelation_loss={{_base_.decorrelation_loss}})

# Tiny CPU twin of mocov2-local_r50_8xb32-200e_abdomen1k.py.
_base_ = ['../_base_/models/medmoco_r18_ct_tiny.py', '../_base_/tiny_phantom.py']
model = dict(local_neck={{_base_.local_neck}}, local_head={{_base_.local_head}})

# Tiny CPU twin of mocov2-local-decor_r50_8xb32-200e_abdomen1k.py.
_base_ = [
    '../_base_/models/medmoco_r18_ct_tiny.py',
    '../_base_/datasets/abdomen1k_ct_phantom.py',
    '../_base_/schedules/sgd_coslr-tiny_phantom.py',
    '../_base_/default_runtime.py',
]
model = dict(local_head={{_base_.local_head}}, decorrelation={{_base_.decorrelation}})
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(interval=3, by_epoch=False))
log_processor = dict(by_epoch=False)

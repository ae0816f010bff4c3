# Pretrained SSL backbone: set the checkpoint with
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH
# PATH = a raw SSL checkpoint (backbone.* keys) or the output of
# tools/model_converters/selfsup2mmseg.py. VerifiedPretrained fails on shape
# mismatches / mostly-missing keys instead of silently random-initialising.
_base_ = ['./deeplabv3plus_r50-d8_4xb4-40k_btcv-512x512.py']
pretrained = 'work_dirs/selfsup/pretrained.pth'
model = dict(backbone=dict(init_cfg=dict(
    type='VerifiedPretrained', checkpoint=pretrained, prefix='backbone.')))

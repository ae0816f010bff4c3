# Pretrained SSL backbone: set the checkpoint with
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH
# PATH = a raw SSL checkpoint (backbone.* keys) or the output of
# tools/model_converters/selfsup2mmseg.py. VerifiedPretrained fails on shape
# mismatches / mostly-missing keys instead of silently random-initialising.
# WhitenedResNet applies the pretraining decorrelation (folded to a fixed 1x1
# conv) to layer4; the checkpoint must hold it (selfsup2mmseg output, or a
# raw SSL checkpoint with decorrelation.* buffers).
_base_ = ['./deeplabv3plus_r50-d8_4xb4-40k_btcv-512x512_ssl.py']
model = dict(backbone=dict(type='WhitenedResNet'))

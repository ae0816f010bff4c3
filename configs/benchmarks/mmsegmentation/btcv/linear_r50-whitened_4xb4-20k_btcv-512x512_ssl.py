# Pretrained SSL backbone: set the checkpoint with
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH
# PATH = a raw SSL checkpoint (backbone.* keys) or the output of
# tools/model_converters/selfsup2mmseg.py. VerifiedPretrained fails on shape
# mismatches / mostly-missing keys instead of silently random-initialising.
# Linear probe on the *whitened* layer4 features (the representation the
# projector saw during pretraining).
_base_ = ['./linear_r50_4xb4-20k_btcv-512x512_ssl.py']
model = dict(backbone=dict(type='WhitenedResNet'))

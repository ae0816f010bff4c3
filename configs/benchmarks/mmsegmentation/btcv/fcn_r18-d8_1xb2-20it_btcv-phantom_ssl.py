# Pretrained SSL backbone: set the checkpoint with
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH
# PATH = a raw SSL checkpoint (backbone.* keys) or the output of
# tools/model_converters/selfsup2mmseg.py. VerifiedPretrained fails on shape
# mismatches / mostly-missing keys instead of silently random-initialising.
# (a ResNet-18 in_channels=1 SSL checkpoint, e.g. from the phantom
# pretraining configs in configs/selfsup/).
_base_ = ['./fcn_r18-d8_1xb2-20it_btcv-phantom.py']
pretrained = 'work_dirs/selfsup/pretrained.pth'
model = dict(backbone=dict(init_cfg=dict(
    type='VerifiedPretrained', checkpoint=pretrained, prefix='backbone.')))

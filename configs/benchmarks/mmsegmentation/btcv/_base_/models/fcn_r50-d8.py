# FCN, ResNet-50-D8: mmseg's FCN config with a CT input and BTCV's 14 classes
# (background + 13 organs). Differences from mmseg's: plain 7x7 stem
# (mmseg.ResNet, like the SSL backbone, instead of ResNetV1c's deep stem), one
# input channel, no ImageNet weights, BN, 14 classes, a loss averaged over
# non-ignored pixels.
_base_ = 'mmseg::_base_/models/fcn_r50-d8.py'
norm_cfg = dict(_delete_=True, type='BN', requires_grad=True)  # SyncBN: multi-GPU
data_preprocessor = dict(
    _scope_='medssl',  # an mmseg:: base builds in mmseg's scope; medssl's
    # registry falls back to mmseg's and also holds ours (VerifiedPretrained)
    type='mmseg.SegDataPreProcessor',
    # HUWindow gives [0, 1]; same centring as the pretraining configs
    mean=[0.5],
    std=[0.25],
    bgr_to_rgb=False,
    pad_val=-2.0,  # = window value 0 (air) after normalisation
    size=(512, 512))  # training batches padded to the crop size
__loss = dict(type='mmseg.CrossEntropyLoss', avg_non_ignore=True)
model = dict(
    _scope_='medssl',  # see data_preprocessor
    type='mmseg.EncoderDecoder',
    pretrained=None,  # no ImageNet (RGB) weights for a 1-channel CT input
    data_preprocessor=data_preprocessor,
    backbone=dict(type='mmseg.ResNet', in_channels=1, norm_cfg=norm_cfg),
    decode_head=dict(
        type='mmseg.FCNHead', num_classes=14, norm_cfg=norm_cfg,
        loss_decode=__loss),
    auxiliary_head=dict(
        type='mmseg.FCNHead', num_classes=14, norm_cfg=norm_cfg,
        loss_decode=__loss))

# Tiny CPU smoke config: DeepLabV3+ ResNet-18-D8 on BTCV phantoms.
_base_ = ['./fcn_r18-d8_1xb2-20it_btcv-phantom.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    decode_head=dict(
        _delete_=True,
        type='mmseg.DepthwiseSeparableASPPHead',
        in_channels=512,
        in_index=3,
        channels=64,
        dilations=(1, 12, 24, 36),
        c1_in_channels=64,
        c1_channels=16,
        dropout_ratio=0.1,
        num_classes=14,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='mmseg.CrossEntropyLoss', use_sigmoid=False,
            avg_non_ignore=True,
            loss_weight=1.0)))

# DeepLabV3+, ResNet-50-D8: fcn_r50-d8.py (CT input, 14 classes) with the
# decode head of mmseg's deeplabv3plus_r50-d8.py.
_base_ = ['./fcn_r50-d8.py']
model = dict(
    decode_head=dict(
        _delete_=True,  # FCNHead's num_convs / concat_input do not apply
        type='mmseg.DepthwiseSeparableASPPHead',
        in_channels=2048,
        in_index=3,
        channels=512,
        dilations=(1, 12, 24, 36),
        c1_in_channels=256,
        c1_channels=48,
        dropout_ratio=0.1,
        num_classes=14,
        norm_cfg={{_base_.norm_cfg}},
        align_corners=False,
        loss_decode={{_base_.model.decode_head.loss_decode}}))

# Linear probe: frozen ResNet-50-D8 (all stages, BN in eval mode) + a 1x1 conv
# classifier on the last feature map, upsampled bilinearly to the input
# (FCNHead with num_convs=0, concat_input=False, no dropout == one 1x1 conv).
_base_ = ['./fcn_r50-d8.py']
model = dict(
    backbone=dict(frozen_stages=4, norm_eval=True, out_indices=(3, )),
    decode_head=dict(
        _delete_=True,
        type='mmseg.FCNHead',
        in_channels=2048,
        in_index=0,
        channels=2048,
        num_convs=0,
        concat_input=False,
        dropout_ratio=0.0,
        num_classes=14,
        norm_cfg=None,
        align_corners=False,
        loss_decode=dict(
            type='mmseg.CrossEntropyLoss', use_sigmoid=False,
            avg_non_ignore=True,
            loss_weight=1.0)),
    auxiliary_head=None)

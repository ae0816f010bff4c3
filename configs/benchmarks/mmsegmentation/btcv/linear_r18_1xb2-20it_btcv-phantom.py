# Tiny CPU smoke config: linear probe on a frozen ResNet-18-D8 (phantoms).
_base_ = ['./fcn_r18-d8_1xb2-20it_btcv-phantom.py']
model = dict(
    backbone=dict(frozen_stages=4, norm_eval=True, out_indices=(3, )),
    decode_head=dict(
        _delete_=True,
        type='mmseg.FCNHead',
        in_channels=512,
        in_index=0,
        channels=512,
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
optim_wrapper = dict(optimizer=dict(lr=0.1, weight_decay=0.0))

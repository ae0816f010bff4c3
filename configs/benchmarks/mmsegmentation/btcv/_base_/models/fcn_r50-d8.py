# FCN, ResNet-50-D8 (mmseg ResNet: plain 7x7 stem like the SSL backbone,
# one input channel), 14 classes (BTCV background + 13 organs).
norm_cfg = dict(type='BN', requires_grad=True)  # SyncBN for multi-GPU runs
data_preprocessor = dict(
    type='mmseg.SegDataPreProcessor',
    # HUWindow gives [0, 1]; same centring as the pretraining configs
    mean=[0.5],
    std=[0.25],
    bgr_to_rgb=False,
    pad_val=-2.0,  # = window value 0 (air) after normalisation
    seg_pad_val=255,
    size=(512, 512))  # training batches padded to the crop size
model = dict(
    type='mmseg.EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='mmseg.ResNet',
        depth=50,
        in_channels=1,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        contract_dilation=True),
    decode_head=dict(
        type='mmseg.FCNHead',
        in_channels=2048,
        in_index=3,
        channels=512,
        num_convs=2,
        concat_input=True,
        dropout_ratio=0.1,
        num_classes=14,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='mmseg.CrossEntropyLoss', use_sigmoid=False,
            avg_non_ignore=True,
            loss_weight=1.0)),
    auxiliary_head=dict(
        type='mmseg.FCNHead',
        in_channels=1024,
        in_index=2,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=14,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='mmseg.CrossEntropyLoss', use_sigmoid=False,
            avg_non_ignore=True,
            loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

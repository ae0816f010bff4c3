# DenseCL (Wang et al. 2021) on single-channel CT with mmselfsup's DenseCL,
# DenseCLNeck and ContrastiveHead (global + dense contrast, lambda 0.5).
model = dict(
    type='DenseCL',
    queue_len=65536,
    feat_dim=128,
    momentum=0.999,
    loss_lambda=0.5,
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[0.5],
        std=[0.25],
        bgr_to_rgb=False),
    backbone=dict(
        type='ResNet',
        depth=50,
        in_channels=1,
        out_indices=[4],
        norm_cfg=dict(type='BN')),
    neck=dict(
        type='DenseCLNeck',
        in_channels=2048,
        hid_channels=2048,
        out_channels=128,
        num_grid=None),
    head=dict(
        type='ContrastiveHead',
        loss=dict(type='mmcls.CrossEntropyLoss'),
        temperature=0.2))

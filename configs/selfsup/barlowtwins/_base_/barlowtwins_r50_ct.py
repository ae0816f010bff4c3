# Barlow Twins (Zbontar et al. 2021) on single-channel CT with mmselfsup's
# BarlowTwins, a 3-layer NonLinearNeck and LatentCrossCorrelationHead.
# BN instead of mmselfsup's SyncBN default (see simclr_r50_ct.py).
model = dict(
    type='BarlowTwins',
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
        norm_cfg=dict(type='BN'),
        zero_init_residual=True),
    neck=dict(
        type='NonLinearNeck',
        in_channels=2048,
        hid_channels=8192,
        out_channels=8192,
        num_layers=3,
        with_last_bn=False,
        with_last_bn_affine=False,
        with_avg_pool=True,
        norm_cfg=dict(type='BN1d'),
        init_cfg=dict(
            type='Kaiming', distribution='uniform', layer=['Linear'])),
    head=dict(
        type='LatentCrossCorrelationHead',
        in_channels=8192,
        loss=dict(type='CrossCorrelationLoss')))

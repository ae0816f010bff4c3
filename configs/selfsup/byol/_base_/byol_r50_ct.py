# BYOL (Grill et al. 2020) on single-channel CT with mmselfsup's BYOL,
# NonLinearNeck projector/predictor and LatentPredictHead.
# BN instead of mmselfsup's SyncBN default (see simclr_r50_ct.py).
model = dict(
    type='BYOL',
    base_momentum=0.99,
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
        type='NonLinearNeck',
        in_channels=2048,
        hid_channels=4096,
        out_channels=256,
        num_layers=2,
        with_bias=True,
        with_last_bn=False,
        with_avg_pool=True,
        norm_cfg=dict(type='BN1d')),
    head=dict(
        type='LatentPredictHead',
        predictor=dict(
            type='NonLinearNeck',
            in_channels=256,
            hid_channels=4096,
            out_channels=256,
            num_layers=2,
            with_bias=True,
            with_last_bn=False,
            with_avg_pool=False,
            norm_cfg=dict(type='BN1d')),
        loss=dict(type='CosineSimilarityLoss')))

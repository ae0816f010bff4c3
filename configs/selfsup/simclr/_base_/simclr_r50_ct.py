# SimCLR (Chen et al. 2020) on single-channel CT with mmselfsup's SimCLR,
# NonLinearNeck and ContrastiveHead (NT-Xent via cross-entropy).
# BN instead of mmselfsup's SyncBN default (runs on CPU and single GPU; use
# `--cfg-options model.backbone.norm_cfg.type=SyncBN` for multi-GPU runs).
model = dict(
    type='SimCLR',
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        # HUWindow already maps to [0, 1]; centre and scale once more.
        mean=[0.5],
        std=[0.25],
        bgr_to_rgb=False),
    backbone=dict(
        type='ResNet',
        depth=50,
        in_channels=1,
        out_indices=[4],  # mmselfsup numbering: 0 stem, k = stage k
        norm_cfg=dict(type='BN'),
        zero_init_residual=True),
    neck=dict(
        type='NonLinearNeck',
        in_channels=2048,
        hid_channels=2048,
        out_channels=128,
        num_layers=2,
        with_avg_pool=True,
        norm_cfg=dict(type='BN1d')),
    head=dict(
        type='ContrastiveHead',
        loss=dict(type='mmcls.CrossEntropyLoss'),
        temperature=0.1))

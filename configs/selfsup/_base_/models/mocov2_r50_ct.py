# MoCo v2 (Chen et al. 2020) on single-channel CT, reusing mmselfsup's MoCo,
# MoCoV2Neck and ContrastiveHead. in_channels=1: a CT slice is one HU channel,
# replicating it to RGB would only triple the stem's compute.
model = dict(
    type='MoCo',
    queue_len=65536,
    feat_dim=128,
    momentum=0.999,
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
        norm_cfg=dict(type='BN')),
    neck=dict(
        type='MoCoV2Neck',
        in_channels=2048,
        hid_channels=2048,
        out_channels=128,
        with_avg_pool=True),
    head=dict(
        type='ContrastiveHead',
        loss=dict(type='mmcls.CrossEntropyLoss'),
        temperature=0.2))

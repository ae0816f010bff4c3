# SimCLR (Chen et al. 2020) on single-channel CT: mmselfsup's SimCLR,
# NonLinearNeck and ContrastiveHead (NT-Xent via cross-entropy) as its config
# defines them, with a CT input (see mocov2_r50_ct.py).
# BN instead of mmselfsup's SyncBN default (runs on CPU and single GPU; use
# `--cfg-options model.backbone.norm_cfg.type=SyncBN` for multi-GPU runs).
_base_ = [
    'mmselfsup::selfsup/_base_/models/simclr.py',
    '../../_base_/models/ct_input.py'
]

model = dict(
    _scope_='medssl',  # build with medssl's registry (see mocov2_r50_ct.py)
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(in_channels=1, norm_cfg=dict(type='BN')),
    neck=dict(norm_cfg=dict(type='BN1d')))

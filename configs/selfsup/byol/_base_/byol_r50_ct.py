# BYOL (Grill et al. 2020) on single-channel CT: mmselfsup's BYOL,
# NonLinearNeck projector/predictor and LatentPredictHead as its config
# defines them, with a CT input (see ../../_base_/models/mocov2_r50_ct.py).
# BN instead of mmselfsup's SyncBN default (see simclr_r50_ct.py).
_base_ = [
    'mmselfsup::selfsup/_base_/models/byol.py',
    '../../_base_/models/ct_input.py'
]

model = dict(
    _scope_='medssl',  # build with medssl's registry (see mocov2_r50_ct.py)
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(in_channels=1, norm_cfg=dict(type='BN')),
    neck=dict(norm_cfg=dict(type='BN1d')),
    head=dict(predictor=dict(norm_cfg=dict(type='BN1d'))))

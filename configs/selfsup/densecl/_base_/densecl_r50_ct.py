# DenseCL (Wang et al. 2021) on single-channel CT: mmselfsup's DenseCL,
# DenseCLNeck and ContrastiveHead (global + dense contrast, lambda 0.5) as its
# config defines them, with a CT input (see mocov2_r50_ct.py).
_base_ = [
    'mmselfsup::selfsup/_base_/models/densecl.py',
    '../../_base_/models/ct_input.py'
]

model = dict(
    _scope_='medssl',  # build with medssl's registry (see mocov2_r50_ct.py)
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(in_channels=1))

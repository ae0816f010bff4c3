# MoCo v2 (Chen et al. 2020) on single-channel CT: mmselfsup's MoCo, MoCoV2Neck
# and ContrastiveHead as its config defines them, with a CT input.
# in_channels=1: a CT slice is one HU channel, replicating it to RGB would
# only triple the stem's compute.
_base_ = ['mmselfsup::selfsup/_base_/models/mocov2.py', './ct_input.py']

model = dict(
    # An mmselfsup:: base builds in mmselfsup's scope; medssl's registry is its
    # child (it still finds every mmselfsup type) and also holds ours.
    _scope_='medssl',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(in_channels=1))  # out_indices [4]: 0 stem, k = stage k

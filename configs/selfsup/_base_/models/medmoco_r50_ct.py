# MoCo v2 + the two fixes of Hassanpour et al. (ISBI 2024, arXiv 2402.14611)
# against dimensional collapse. Both are switched off here; the experiment
# configs switch them on (see configs/selfsup/medmoco/).
_base_ = ['./mocov2_r50_ct.py']

model = dict(
    type='MedMoCo',
    backbone=dict(out_indices=[3, 4]),  # layer3 -> local loss, layer4 -> global
    local_in_index=0,
    local_weight=0.5)

# Contribution 1: contrast between local patches of the layer3 feature maps.
local_head = dict(
    type='LocalPatchContrastiveHead',
    in_channels=1024,
    hid_channels=512,
    out_channels=128,
    grid_size=4,
    temperature=0.2)
# Contribution 2: ZCA whitening (eigendecomposition) of the final backbone
# features before the projector; 32 groups of 64 channels.
decorrelation = dict(
    type='EigenDecorrelationNeck',
    in_channels=2048,
    num_groups=32,
    eps=1e-5,
    momentum=0.1,
    method='eigh')

# MoCo v2 + the two fixes of Hassanpour et al. (ISBI 2024, arXiv 2402.14611)
# against dimensional collapse. Both are switched off here; the experiment
# configs switch them on (see configs/selfsup/medmoco/).
_base_ = ['./mocov2_r50_ct.py']

model = dict(
    type='MedMoCo',
    backbone=dict(out_indices=[3, 4]),  # layer3 -> local loss, layer4 -> global
    local_in_index=0,
    local_weight=0.5)

# Contribution 1: contrast between local patches of the layer3 feature maps
# (cells pooled by the head, projected by the local neck: fc-relu-fc per cell).
local_neck = dict(
    type='MoCoV2Neck',
    in_channels=1024,
    hid_channels=512,
    out_channels=128,
    with_avg_pool=False)
local_head = dict(type='LocalPatchContrastiveHead', grid_size=4, temperature=0.2)
# Contribution 2: decorrelation by eigendecomposition, chosen by the ablation
# (README, "Does the method work?"): ZCA whitening of the final backbone
# features before the projector, on 32 groups of 64 channels redrawn every
# step (every channel pair over time; running covariance for eval), plus an
# effective-rank (spectral entropy) loss on the backbone's pooled features
# (the forward whitening alone leaves the backbone collapsed).
decorrelation = dict(
    type='EigenDecorrelationNeck',
    in_channels=2048,
    num_groups=32,
    shuffle_groups=True,
    eps=1e-5,
    momentum=0.1)
decorrelation_loss = dict(type='EffectiveRankLoss', loss_weight=1.0)

# ResNet-18 sizes of medmoco_r50_ct.py for CPU smoke runs on phantoms.
_base_ = ['./medmoco_r50_ct.py']

model = dict(
    queue_len=64,  # a multiple of the global batch (4 per process x 1 or 2)
    backbone=dict(depth=18),
    neck=dict(in_channels=512, hid_channels=512, out_channels=128))
local_neck = dict(in_channels=256, hid_channels=128)
local_head = dict(grid_size=2)
# 32 groups of 16 channels (as in the ablation). One process at batch 4 gives
# 4 x 2 x 2 = 16 positions at 64x64; centred, they span rank <= 15 < 16, so
# each group's batch covariance is singular and only eps regularises it (the
# neck warns once). Two processes (32 positions) give full rank.
decorrelation = dict(in_channels=512, num_groups=32)

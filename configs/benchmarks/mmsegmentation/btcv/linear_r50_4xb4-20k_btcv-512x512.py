# Linear probe (frozen backbone, BN eval, 1x1 conv classifier on layer4,
# upsampled). Random-init backbone = the lower baseline; see the _ssl variant.
_base_ = [
    './_base_/models/linear_r50.py', './_base_/datasets/btcv.py',
    './_base_/default_runtime.py', './_base_/schedules/schedule_20k.py'
]
optim_wrapper = dict(optimizer=dict(lr=0.1, weight_decay=0.0))

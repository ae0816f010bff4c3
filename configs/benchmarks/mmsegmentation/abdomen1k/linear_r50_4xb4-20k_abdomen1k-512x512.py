# Linear probe on AbdomenCT-1K (5 classes), frozen ResNet-50-D8.
_base_ = [
    '../btcv/_base_/models/linear_r50.py', './_base_/abdomen1k.py',
    '../btcv/_base_/default_runtime.py',
    '../btcv/_base_/schedules/schedule_20k.py'
]
model = dict(decode_head=dict(num_classes=5))
optim_wrapper = dict(optimizer=dict(lr=0.1, weight_decay=0.0))

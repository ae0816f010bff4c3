# Tiny CPU smoke config: DeepLabV3+ ResNet-18-D8 on BTCV phantoms
# (the setting: _base_/btcv_phantom_cpu.py).
_base_ = [
    './_base_/models/deeplabv3plus_r50-d8.py', './_base_/btcv_phantom_cpu.py'
]
model = dict(
    data_preprocessor=dict(size=(64, 64)),
    backbone=dict(depth=18),
    decode_head=dict(
        in_channels=512, channels=64, c1_in_channels=64, c1_channels=16),
    auxiliary_head=dict(in_channels=256, channels=32))

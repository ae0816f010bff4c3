# Tiny CPU smoke config: FCN ResNet-18-D8 on converted BTCV phantoms,
# 64x64 crops, batch 2, 20 iterations, validation at the end
# (the setting: _base_/btcv_phantom_cpu.py).
_base_ = ['./_base_/models/fcn_r50-d8.py', './_base_/btcv_phantom_cpu.py']
model = dict(
    data_preprocessor=dict(size=(64, 64)),
    backbone=dict(depth=18),
    decode_head=dict(in_channels=512, channels=64),
    auxiliary_head=dict(in_channels=256, channels=32))
# lr 0.03 (not mmseg's 0.01): chosen on the validation split of the
# fine-tuning diagnosis (README, "Does pretraining pay off?"), best for
# scratch and for pretrained inits alike; confirmed on fresh seeds.
optim_wrapper = dict(optimizer=dict(lr=0.03))

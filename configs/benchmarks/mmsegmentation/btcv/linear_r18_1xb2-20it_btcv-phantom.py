# Tiny CPU smoke config: linear probe on a frozen ResNet-18-D8 (phantoms):
# the probe of _base_/models/linear_r50.py (LinearProbeHead: affine-free BN +
# 1x1 conv on layer4) at ResNet-18 sizes, plain BN (one process), in the
# setting of _base_/btcv_phantom_cpu.py. Probe lr 0.1: chosen on the
# validation split (probe-lr table in configs/benchmarks/mmsegmentation/README.md).
_base_ = ['./_base_/models/linear_r50.py', './_base_/btcv_phantom_cpu.py']
model = dict(
    data_preprocessor=dict(size=(64, 64)),
    backbone=dict(depth=18),
    decode_head=dict(in_channels=512, norm_cfg=dict(type='BN')))
optim_wrapper = dict(optimizer=dict(lr=0.1, weight_decay=0.0))

# Tiny CPU smoke config: FCN ResNet-18-D8 on converted BTCV phantoms,
# 64x64 crops, batch 2, 20 iterations, validation at the end.
# data_root: --cfg-options train_dataloader.dataset.data_root=... (and val/test)
# or edit data_root below.
_base_ = ['./fcn_r50-d8_4xb4-40k_btcv-512x512.py']
data_root = 'data/phantoms/btcv_slices/'
crop_size = (64, 64)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(depth=18),
    decode_head=dict(in_channels=512, channels=64),
    auxiliary_head=dict(in_channels=256, channels=32))
train_pipeline = [
    dict(type='LoadCTSlice'),
    dict(type='mmseg.LoadAnnotations'),
    dict(type='HUWindow', windows=[(-175, 250)]),
    dict(
        type='mmseg.RandomResize',
        scale=crop_size,
        ratio_range=(0.75, 1.25),
        keep_ratio=True),
    dict(type='mmseg.RandomCrop', crop_size=crop_size, cat_max_ratio=1.0),
    dict(type='mmseg.PackSegInputs'),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    # batch 1: slices of different volumes differ in size (no resize at test)
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=20,
         by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=20, val_interval=20)
default_hooks = dict(
    logger=dict(interval=5),
    checkpoint=dict(interval=20, max_keep_ckpts=1, save_best=None))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))

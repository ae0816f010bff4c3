# The tiny CPU setting every *_btcv-phantom config shares (their models only
# shrink to ResNet-18 sizes): converted BTCV phantoms, 64x64 crops, batch 2,
# 20 iterations, validation at the end.
# data_root: --cfg-options train_dataloader.dataset.data_root=... (and val/test)
# or edit data_root below.
_base_ = [
    './datasets/btcv.py', './default_runtime.py', './schedules/schedule_40k.py'
]
data_root = 'data/phantoms/btcv_slices/'
crop_size = (64, 64)
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
test_dataloader = dict(  # splits/test.txt (base): not the val split
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root))
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

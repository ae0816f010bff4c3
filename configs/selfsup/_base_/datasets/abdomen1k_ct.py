# AbdomenCT-1K axial slices for pretraining (converted by
# tools/dataset_converters/abdomen1k.py; see data/README.md).
dataset_type = 'CTSliceDataset'
data_root = 'data/abdomen1k/'

# HU window -> one channel in [0, 1]; CT needs no colour jitter/grayscale:
# intensity changes happen in HU / normalised space (never 8-bit ops).
hu_windows = [(-175, 250)]
crop_size = 224
view_pipeline = [
    dict(type='RandomResizedCropWithParams', size=crop_size, scale=(0.2, 1.)),
    dict(type='RandomFlipWithParams', prob=0.5),
    dict(type='RandomIntensityScale', prob=0.8, contrast_range=(0.6, 1.4)),
    dict(type='RandomIntensityShift', prob=0.8, delta=0.1),
    dict(type='RandomGamma', prob=0.5, gamma_range=(0.7, 1.5)),
    dict(type='RandomGaussianNoise', prob=0.3, std_range=(0.0, 0.03)),
    dict(type='RandomFloatGaussianBlur', prob=0.5, sigma_range=(0.1, 2.0)),
]
train_pipeline = [
    dict(type='LoadCTSlice'),
    dict(type='HUWindow', windows=hu_windows),
    dict(type='MultiViewWithParams', num_views=2, transforms=[view_pipeline]),
    dict(type='PackSelfSupInputs', meta_keys=['img_path', 'view_params']),
]

train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    drop_last=True,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='splits/pretrain.txt',
        data_prefix=dict(img_path='img_dir'),
        pipeline=train_pipeline))

# Tiny CPU variant: phantom slices (tools/misc/make_phantoms.py + converter),
# 64x64 views, batch 4. Same transforms as the full-scale dataset.
_base_ = ['./abdomen1k_ct.py']

data_root = 'data/phantoms/abdomen1k_slices/'
crop_size = 64
view_pipeline = [
    dict(type='RandomResizedCropWithParams', size=crop_size, scale=(0.2, 1.)),
    dict(type='RandomFlipWithParams', prob=0.5),
    dict(type='RandomHUContrast', prob=0.8, contrast_range=(0.6, 1.4)),
    dict(type='RandomHUBrightness', prob=0.8, delta=0.1),
    dict(type='RandomGamma', prob=0.5, gamma_range=(0.7, 1.5)),
    dict(type='RandomGaussianNoise', prob=0.3, std_range=(0.0, 0.03)),
    dict(type='RandomGaussianBlur', prob=0.5, sigma_range=(0.1, 2.0)),
]
train_pipeline = [
    dict(type='LoadCTSlice'),
    dict(type='HUWindow', windows={{_base_.hu_windows}}),
    dict(type='MultiViewWithParams', num_views=2, transforms=[view_pipeline]),
    dict(type='PackSelfSupInputs', meta_keys=['img_path', 'view_params']),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))

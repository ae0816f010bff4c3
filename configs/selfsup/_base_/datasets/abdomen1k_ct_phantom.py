# Tiny CPU variant: phantom slices (tools/misc/make_phantoms.py + converter),
# 64x64 views, batch 4. Same transforms as the full-scale dataset: its
# view_pipeline and train_pipeline with only the crop size changed.
_base_ = ['./abdomen1k_ct.py']

data_root = 'data/phantoms/abdomen1k_slices/'
crop_size = 64
view_pipeline = [
    dict(t, size=crop_size) if t.type == 'RandomResizedCropWithParams' else t
    for t in _base_.view_pipeline
]
train_pipeline = [
    dict(t, transforms=[view_pipeline])
    if t.type == 'MultiViewWithParams' else t for t in _base_.train_pipeline
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))

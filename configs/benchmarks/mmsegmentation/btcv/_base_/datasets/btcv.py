# BTCV 13 organs, converted slices (tools/dataset_converters/btcv.py):
# <data_root>/{img_dir,ann_dir,meta,splits}. Three volume-level splits
# (medssl/datasets/splits/btcv_13organ.json): train (20 volumes), val (4
# volumes: model selection, save_best, probe lr) and test
# (img0035-img0040, the held-out set, used only by tools/test.py).
dataset_type = 'BTCVDataset'
data_root = 'data/btcv_slices/'
crop_size = (512, 512)
hu_windows = [(-175, 250)]  # abdomen window -> one channel in [0, 1]
train_pipeline = [
    dict(type='LoadCTSlice'),
    dict(type='mmseg.LoadAnnotations'),
    dict(type='HUWindow', windows=hu_windows),
    dict(
        type='mmseg.RandomResize',
        scale=crop_size,
        ratio_range=(0.75, 1.5),
        keep_ratio=True),
    # cat_max_ratio=1: background fills most CT slices, do not re-sample.
    dict(type='mmseg.RandomCrop', crop_size=crop_size, cat_max_ratio=1.0),
    # A horizontal flip swaps patient left/right while labels keep their
    # laterality (kidneys 2/3, adrenals 12/13): disabled by default.
    dict(type='mmseg.RandomFlip', prob=0.0),
    dict(type='mmseg.PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadCTSlice'),
    dict(type='mmseg.LoadAnnotations'),
    dict(type='HUWindow', windows=hu_windows),
    dict(type='mmseg.PackSegInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='splits/train.txt',
        # label-efficiency protocol: keep this fraction of the training
        # *volumes* (chosen per fraction_seed); 1.0 = all
        case_fraction=1.0,
        fraction_seed=0,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='splits/val.txt',
        pipeline=test_pipeline))
# the val loader on the held-out test volumes
test_dataloader = dict(
    val_dataloader,
    dataset=dict(val_dataloader['dataset'], ann_file='splits/test.txt'))
# 3D Dice per volume (slices regrouped by case id); see VolumeDiceMetric.
# Model selection (val) on Dice only; the held-out test adds HD95 (mm) and
# counts missed / false-positive organ-cases.
val_evaluator = dict(type='VolumeDiceMetric')
test_evaluator = dict(type='VolumeDiceMetric', hd95=True)

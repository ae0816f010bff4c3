# MoCo v2 schedule: SGD lr 0.03 per 256 images, momentum 0.9, wd 1e-4, a true
# cosine decay updated every iteration (the reference code's "cosine" was a
# mislabelled linear ramp, and its wd 1e-6).
optimizer = dict(type='SGD', lr=0.03, weight_decay=1e-4, momentum=0.9)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer)

param_scheduler = [
    dict(
        type='CosineAnnealingLR',
        T_max=200,
        by_epoch=True,
        begin=0,
        end=200,
        convert_to_iter_based=True)
]

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=200)
# `tools/train.py --auto-scale-lr` rescales lr linearly from this batch size.
auto_scale_lr = dict(base_batch_size=256, enable=False)

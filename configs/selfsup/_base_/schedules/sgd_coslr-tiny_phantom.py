# A few iterations for CPU smoke runs, same optimizer and a cosine decay.
optimizer = dict(type='SGD', lr=0.03, weight_decay=1e-4, momentum=0.9)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer)
max_iters = 6
param_scheduler = [
    # no T_max: it follows `end`, so --cfg-options param_scheduler.0.end=N
    # (with train_cfg.max_iters=N) gives one cosine over N iterations
    dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=max_iters)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
auto_scale_lr = dict(base_batch_size=256, enable=False)

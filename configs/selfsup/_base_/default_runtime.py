# Runtime shared by every pretraining config.
default_scope = 'medssl'

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
# A non-finite loss stops the run naming the iteration and the loss term
# (on_nonfinite='skip' drops that update instead). CollapseMonitorHook logs
# the effective rank / normalised std of the projector output and pooled
# backbone features of the training batch (no extra forward pass; one small
# SVD per source) every `interval` iterations and at the first.
custom_hooks = [
    dict(type='NonFiniteLossHook', on_nonfinite='raise'),
    dict(type='CollapseMonitorHook', interval=50),
]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # tools/train.py switches nccl -> gloo when CUDA is unavailable.
    dist_cfg=dict(backend='nccl'),
)

log_processor = dict(
    window_size=10,
    custom_cfg=[dict(data_src='', method='mean', window_size='global')])

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='SelfSupVisualizer', vis_backends=vis_backends, name='visualizer')

log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)

# schedule_40k.py at half the iterations.
_base_ = ['./schedule_40k.py']
# schedule_40k's poly decay, ending at 20k
param_scheduler = [dict(_base_.param_scheduler[0], end=20000)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=20000, val_interval=2000)
default_hooks = dict(checkpoint=dict(interval=2000))

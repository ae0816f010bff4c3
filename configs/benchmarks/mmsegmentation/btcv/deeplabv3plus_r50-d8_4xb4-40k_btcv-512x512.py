# deeplabv3plus R50-D8, full fine-tuning from random init, 4 GPUs x 4 images,
# 40k iterations, 512x512 crops, BTCV 13 organs (24 train / 6 val volumes).
_base_ = [
    './_base_/models/deeplabv3plus_r50-d8.py', './_base_/datasets/btcv.py',
    './_base_/default_runtime.py', './_base_/schedules/schedule_40k.py'
]

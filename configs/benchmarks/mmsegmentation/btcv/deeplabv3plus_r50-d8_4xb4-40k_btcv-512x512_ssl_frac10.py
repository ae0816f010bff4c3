# Label-efficiency protocol: fine-tune on 10 % of the training volumes
# (whole volumes, at least one, chosen deterministically per fraction_seed;
# vary the seed with --cfg-options train_dataloader.dataset.fraction_seed=N).
_base_ = ['./deeplabv3plus_r50-d8_4xb4-40k_btcv-512x512_ssl.py']
train_dataloader = dict(dataset=dict(case_fraction=0.1, fraction_seed=0))

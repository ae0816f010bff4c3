# Label-efficiency protocol: fine-tune on exactly 5 of the 20 training
# volumes (= 25 %; whole volumes chosen deterministically per fraction_seed;
# vary it with --cfg-options train_dataloader.dataset.fraction_seed=N).
# The true fraction is 5/20 (tools/analysis_tools/data_efficiency.py
# records volumes / training volumes).
_base_ = ['./deeplabv3plus_r50-d8_4xb4-40k_btcv-512x512.py']
train_dataloader = dict(dataset=dict(num_cases=5, fraction_seed=0))

# AbdomenCT-1K segmentation (liver, kidney, spleen, pancreas) on converted
# slices, with the converter's volume-level splits/{train,val,test}.txt of
# the masked cases (every 5th is test, every 5th of the rest val;
# --val-every). val selects the model, test only in tools/test.py.
# Pipelines are the BTCV ones.
_base_ = ['../../btcv/_base_/datasets/btcv.py']
dataset_type = 'AbdomenCT1KDataset'
data_root = 'data/abdomen1k_slices/'
train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))
test_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root))

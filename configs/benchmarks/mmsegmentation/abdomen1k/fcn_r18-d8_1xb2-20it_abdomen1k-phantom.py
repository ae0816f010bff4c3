# Tiny CPU smoke config on converted AbdomenCT-1K phantoms (5 classes), with
# the converter's volume-level splits/{train,val,test}.txt.
_base_ = ['../btcv/fcn_r18-d8_1xb2-20it_btcv-phantom.py']
dataset_type = 'AbdomenCT1KDataset'
data_root = 'data/phantoms/abdomen1k_slices/'
model = dict(
    decode_head=dict(num_classes=5), auxiliary_head=dict(num_classes=5))
train_dataloader = dict(
    dataset=dict(
        type=dataset_type, data_root=data_root,
        ann_file='splits/train.txt'))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type, data_root=data_root,
        ann_file='splits/val.txt'))
test_dataloader = dict(
    dataset=dict(
        type=dataset_type, data_root=data_root,
        ann_file='splits/test.txt'))

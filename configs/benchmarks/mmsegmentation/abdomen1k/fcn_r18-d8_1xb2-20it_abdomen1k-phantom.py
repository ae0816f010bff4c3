# Tiny CPU smoke config on converted AbdomenCT-1K phantoms (5 classes). The
# phantom conversion has only splits/pretrain.txt, so train and val both use
# it here (smoke test only, not an evaluation protocol).
_base_ = ['../btcv/fcn_r18-d8_1xb2-20it_btcv-phantom.py']
dataset_type = 'AbdomenCT1KDataset'
data_root = 'data/phantoms/abdomen1k_slices/'
model = dict(
    decode_head=dict(num_classes=5), auxiliary_head=dict(num_classes=5))
train_dataloader = dict(
    dataset=dict(
        type=dataset_type, data_root=data_root,
        ann_file='splits/pretrain.txt'))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type, data_root=data_root,
        ann_file='splits/pretrain.txt'))
test_dataloader = val_dataloader

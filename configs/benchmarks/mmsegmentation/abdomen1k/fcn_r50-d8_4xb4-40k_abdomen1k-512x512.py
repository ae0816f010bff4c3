# FCN R50-D8 full fine-tuning on AbdomenCT-1K (5 classes), random init;
# pretrained: --cfg-options model.backbone.init_cfg.type=VerifiedPretrained
#   model.backbone.init_cfg.checkpoint=PATH model.backbone.init_cfg.prefix=backbone.
_base_ = [
    '../btcv/_base_/models/fcn_r50-d8.py', './_base_/abdomen1k.py',
    '../btcv/_base_/default_runtime.py',
    '../btcv/_base_/schedules/schedule_40k.py'
]
model = dict(
    decode_head=dict(num_classes=5), auxiliary_head=dict(num_classes=5))

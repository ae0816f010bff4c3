# Linear probe: frozen ResNet-50-D8 (all stages, BN in eval mode, no
# gradient) -> LinearProbeHead = affine-free BatchNorm on the layer4 features
# + a 1x1 conv classifier, upsampled bilinearly to the input (mmseg
# BaseDecodeHead). The affine-free BN makes the probe invariant to the scale
# of the frozen features (MAE's linear probe); SyncBN because the full-scale
# probes run under DDP (mmengine reverts it to BN in a single process).
_base_ = ['./fcn_r50-d8.py']
model = dict(
    backbone=dict(frozen_stages=4, norm_eval=True, out_indices=(3, )),
    decode_head=dict(
        _delete_=True,
        type='LinearProbeHead',
        in_channels=2048,
        in_index=0,
        num_classes=14,
        norm_cfg=dict(type='SyncBN', affine=False),
        dropout_ratio=0.0,
        align_corners=False,
        loss_decode=dict(
            type='mmseg.CrossEntropyLoss', use_sigmoid=False,
            avg_non_ignore=True,
            loss_weight=1.0)),
    auxiliary_head=None)

"""medssl registries see medssl, mmselfsup and mmseg modules."""
from mmengine.registry import DefaultScope

from medssl.registry import DATASETS, HOOKS, METRICS, MODELS, TRANSFORMS
from medssl.utils import register_all_modules


def test_lookup_order_and_scope():
    register_all_modules()
    assert DefaultScope.get_current_instance().scope_name == 'medssl'
    import mmseg.models as mmseg_models
    import mmselfsup.models as ssl_models

    # parent first: mmselfsup
    assert MODELS.get('MoCo') is ssl_models.MoCo
    assert MODELS.get('ResNet') is ssl_models.ResNet
    # fallback: mmseg
    assert MODELS.get('EncoderDecoder') is mmseg_models.EncoderDecoder
    assert MODELS.get('mmseg.ResNet') is mmseg_models.ResNet
    assert METRICS.get('IoUMetric').__module__.startswith('mmseg')
    assert TRANSFORMS.get('PackSegInputs').__module__.startswith('mmseg')
    assert TRANSFORMS.get('PackSelfSupInputs').__module__.startswith(
        'mmselfsup')
    # own modules
    assert HOOKS.get('NonFiniteLossHook').__module__.startswith('medssl')
    assert MODELS.get('NotARegisteredThing') is None
    assert DATASETS.get('BTCVDataset') is not None


def test_build_mixed_config():
    register_all_modules()
    model = MODELS.build(
        dict(type='EncoderDecoder',
             data_preprocessor=dict(type='SegDataPreProcessor', mean=[0.],
                                    std=[1.]),
             backbone=dict(type='mmseg.ResNet', depth=18, in_channels=1),
             decode_head=dict(type='FCNHead', in_channels=512, channels=8,
                              num_classes=3, num_convs=1, in_index=3)))
    assert type(model.backbone).__module__.startswith('mmseg')
    assert model.backbone.conv1.in_channels == 1

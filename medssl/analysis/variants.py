"""The pretraining variants, defined once.

Every variant is MoCo v2 plus three switches: the local patch loss, the
decorrelation neck in the forward path (its ``EigenDecorrelationNeck``
options) and the effective-rank loss on the backbone. The method ablation
(:mod:`medssl.analysis.ablation`), the step benchmark
(``benchmarks/pretrain_step.py``) and the model tests read this table;
:func:`model_config` turns a row into a model config in code (the two
latter), :func:`phantom_config` / :func:`config_patch` into a config file
and its overrides (the ablation).

``decor-fixed`` and ``decor-shuffled`` use the same group size (the shipped
32 groups), so the two differ in the shuffling alone.
"""
import copy
from collections import OrderedDict
from typing import Dict, Optional, Tuple

__all__ = ['NUM_GROUPS', 'SWITCHES', 'BENCHMARK_ONLY', 'DIAGNOSIS', 'VIEWS',
           'VARIANTS', 'phantom_config', 'config_patch', 'model_config']

NUM_GROUPS = 32  # the shipped configs' groups (C / 32 channels each)
_FIXED = dict(shuffle_groups=False, num_groups=NUM_GROUPS)
_SHUFFLED = dict(shuffle_groups=True, num_groups=NUM_GROUPS)
_EFFECTIVE_RANK = dict(type='EffectiveRankLoss', loss_weight=1.0)


def _switches(local: bool = False, decorrelation: Optional[dict] = None,
              decorrelation_loss: Optional[dict] = None) -> dict:
    return dict(local=local, decorrelation=decorrelation,
                decorrelation_loss=decorrelation_loss)


# name -> switches: ``local`` (local patch loss), ``decorrelation``
# (EigenDecorrelationNeck options, None = off), ``decorrelation_loss``
# (loss config, None = off).
SWITCHES = OrderedDict([
    ('mocov2', _switches()),
    ('local', _switches(local=True)),
    ('decor-fixed', _switches(decorrelation=_FIXED)),
    ('decor-shuffled', _switches(decorrelation=_SHUFFLED)),
    ('decor-loss', _switches(decorrelation=_SHUFFLED,
                             decorrelation_loss=_EFFECTIVE_RANK)),
    # the effective-rank loss alone, no whitening in the forward path
    ('spectral-only', _switches(decorrelation_loss=_EFFECTIVE_RANK)),
    ('full', _switches(local=True, decorrelation=_SHUFFLED,
                       decorrelation_loss=_EFFECTIVE_RANK)),
    # one C x C group: the cost the groups avoid
    ('decor-full', _switches(decorrelation=dict(shuffle_groups=False,
                                                num_groups=1))),
])
# Measured by the benchmark only: full-width whitening needs many more
# samples than channels, far more than the phantom ablation's batches hold.
BENCHMARK_ONLY = ('decor-full', )


def model_config(name: str, depth: int = 18, *, queue_len: int = 65536,
                 feat_dim: int = 128, hid_channels: Optional[int] = None,
                 local_hid_channels: int = 512, momentum: float = 0.999,
                 num_groups: Optional[int] = None,
                 grid_size: int = 4, algorithm: Optional[str] = None) -> dict:
    """The R``depth`` model config of variant ``name``.

    MoCo v2 (mmselfsup's MoCoV2Neck, ContrastiveHead at T = 0.2) with the
    variant's switches; ``hid_channels`` defaults to the backbone width,
    ``num_groups`` (None: the table's) replaces the group count of grouped
    whitening. ``algorithm`` None: ``'MoCo'`` for ``mocov2``, else
    ``'MedMoCo'``; a MedMoCo ``mocov2`` has every switch off.
    """
    sw = SWITCHES[name]
    c3, c4 = (256, 512) if depth in (18, 34) else (1024, 2048)
    algorithm = algorithm or ('MoCo' if name == 'mocov2' else 'MedMoCo')
    cfg = dict(
        type=algorithm, queue_len=queue_len, feat_dim=feat_dim,
        momentum=momentum,
        data_preprocessor=dict(type='SelfSupDataPreprocessor', mean=[0.5],
                               std=[0.25], bgr_to_rgb=False),
        backbone=dict(type='ResNet', depth=depth, in_channels=1,
                      out_indices=[3, 4] if sw['local'] else [4],
                      norm_cfg=dict(type='BN')),
        neck=dict(type='MoCoV2Neck', in_channels=c4,
                  hid_channels=hid_channels or c4, out_channels=feat_dim,
                  with_avg_pool=True),
        head=dict(type='ContrastiveHead',
                  loss=dict(type='mmcls.CrossEntropyLoss'), temperature=0.2))
    if algorithm == 'MoCo':
        return cfg
    decor = sw['decorrelation']
    if decor is not None:
        decor = dict(decor, type='EigenDecorrelationNeck', in_channels=c4)
        if num_groups and decor['num_groups'] > 1:
            decor['num_groups'] = num_groups
    local = sw['local']
    cfg.update(
        local_neck=dict(type='MoCoV2Neck', in_channels=c3,
                        hid_channels=local_hid_channels,
                        out_channels=feat_dim, with_avg_pool=False)
        if local else None,
        local_head=dict(type='LocalPatchContrastiveHead',
                        grid_size=grid_size, temperature=0.2)
        if local else None,
        decorrelation=decor,
        decorrelation_loss=copy.deepcopy(sw['decorrelation_loss']),
        local_in_index=0,
        local_weight=0.5)
    return cfg


def phantom_config(name: str) -> str:
    """The tiny phantom pretraining config of variant ``name``."""
    sw = SWITCHES[name]
    if not (sw['local'] or sw['decorrelation'] or sw['decorrelation_loss']):
        return 'configs/selfsup/mocov2/mocov2_r18_1xb4-6it_phantom.py'
    decor = sw['decorrelation'] is not None or \
        sw['decorrelation_loss'] is not None
    return ('configs/selfsup/medmoco/mocov2' +
            ('-local' if sw['local'] else '') + ('-decor' if decor else '') +
            '_r18_1xb4-6it_phantom.py')


def config_patch(name: str) -> Dict[str, Optional[dict]]:
    """``merge_from_dict`` keys setting the decorrelation switches of
    ``name`` on its config (empty when the config has no decorrelation), so
    the variant does not change meaning when a config's defaults change."""
    sw = SWITCHES[name]
    if sw['decorrelation'] is None and sw['decorrelation_loss'] is None:
        return {}
    return copy.deepcopy({'model.decorrelation': sw['decorrelation'],
                          'model.decorrelation_loss': sw['decorrelation_loss']})


# The ablation's table: name -> (phantom config, merge_from_dict patch).
VARIANTS: 'OrderedDict[str, Tuple[str, dict]]' = OrderedDict(
    (name, (phantom_config(name), config_patch(name)))
    for name in SWITCHES if name not in BENCHMARK_ONLY)

# Diagnosis variants of the fine-tuning question (README, "Does pretraining
# pay off?"): the full method with one more change, name -> extra
# merge_from_dict keys; ``VIEWS`` patches the view pipeline
# ({transform type: {arg: value}}).
VIEWS = 'views'
DIAGNOSIS = OrderedDict([
    ('full-perpos', {'model.decorrelation_loss': dict(_EFFECTIVE_RANK,
                                                      per_position=True)}),
    ('full-local1', {'model.local_weight': 1.0}),
    ('full-crop0.5', {VIEWS: {'RandomResizedCropWithParams':
                              dict(scale=(0.5, 1.0))}}),
])
VARIANTS.update(
    (name, (phantom_config('full'), dict(config_patch('full'), **extra)))
    for name, extra in DIAGNOSIS.items())

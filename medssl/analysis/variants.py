"""The pretraining variants, defined once.

Every variant is MoCo v2 plus three switches: the local patch loss, the
decorrelation neck in the forward path (its ``EigenDecorrelationNeck``
options) and the effective-rank loss on the backbone. The method ablation
(:mod:`medssl.analysis.ablation`), the step benchmark
(``benchmarks/pretrain_step.py``) and the model tests read this table.

``decor-fixed`` and ``decor-shuffled`` use the same group size (the shipped
32 groups), so the two differ in the shuffling alone.
"""
import copy
from collections import OrderedDict
from typing import Dict, Optional, Tuple

__all__ = ['NUM_GROUPS', 'SWITCHES', 'BENCHMARK_ONLY', 'DIAGNOSIS', 'VIEWS',
           'VARIANTS', 'phantom_config', 'config_patch']

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

"""medssl registries.

Every node is a child of the matching **mmselfsup** registry (so ``MoCo``,
``MoCoV2Neck``, ``ContrastiveHead``, ``SelfSupDataPreprocessor`` ... resolve
without a prefix) and falls back to the matching **mmseg** registry (so
``EncoderDecoder``, ``FCNHead``, ``SegDataPreProcessor``, ``IoUMetric`` ...
resolve too). Names that exist in both (e.g. ``ResNet``) resolve to the
mmselfsup one; write ``mmseg.ResNet`` to pick mmseg's. Configs use
``default_scope = 'medssl'``.
"""
from typing import Optional, Sequence, Type

from mmengine.registry import Registry
from mmseg import registry as mmseg_registry
from mmselfsup import registry as mmselfsup_registry


class FallbackRegistry(Registry):
    """A :class:`Registry` that also searches sibling registries.

    mmengine registries have a single parent; medssl wants to see both
    mmselfsup (the parent) and mmseg (a fallback), so ``get`` tries the
    normal lookup first and then each fallback in order.
    """

    def __init__(self, *args, fallbacks: Sequence[Registry] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self._fallbacks = list(fallbacks)

    def get(self, key: str) -> Optional[Type]:
        obj = super().get(key)
        if obj is None:
            for registry in self._fallbacks:
                obj = registry.get(key)
                if obj is not None:
                    break
        return obj


def _node(attr: str, location: Optional[str] = None) -> FallbackRegistry:
    """A medssl node: child of mmselfsup's ``attr`` node, falling back to
    mmseg's ``attr`` node."""
    parent = getattr(mmselfsup_registry, attr)
    return FallbackRegistry(
        parent.name,
        parent=parent,
        fallbacks=[getattr(mmseg_registry, attr)],
        scope='medssl',
        locations=[location] if location else [])


RUNNERS = _node('RUNNERS')
RUNNER_CONSTRUCTORS = _node('RUNNER_CONSTRUCTORS')
LOOPS = _node('LOOPS')
HOOKS = _node('HOOKS', 'medssl.engine')
DATASETS = _node('DATASETS', 'medssl.datasets')
DATA_SAMPLERS = _node('DATA_SAMPLERS', 'medssl.datasets')
TRANSFORMS = _node('TRANSFORMS', 'medssl.datasets')
MODELS = _node('MODELS', 'medssl.models')
MODEL_WRAPPERS = _node('MODEL_WRAPPERS')
WEIGHT_INITIALIZERS = _node('WEIGHT_INITIALIZERS')
OPTIMIZERS = _node('OPTIMIZERS')
OPTIM_WRAPPERS = _node('OPTIM_WRAPPERS')
OPTIM_WRAPPER_CONSTRUCTORS = _node('OPTIM_WRAPPER_CONSTRUCTORS')
PARAM_SCHEDULERS = _node('PARAM_SCHEDULERS')
METRICS = _node('METRICS', 'medssl.evaluation')
EVALUATOR = _node('EVALUATOR')
TASK_UTILS = _node('TASK_UTILS')
VISUALIZERS = _node('VISUALIZERS')
VISBACKENDS = _node('VISBACKENDS')
LOG_PROCESSORS = _node('LOG_PROCESSORS')

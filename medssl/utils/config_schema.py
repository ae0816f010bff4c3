"""Config keys checked below the top level, wherever the schema is known.

mmengine builds every ``dict(type=X, **kwargs)`` by calling ``X(**kwargs)``,
so a misspelt argument is a ``TypeError`` at build time -- or never, when
``X`` swallows ``**kwargs``: ``default_hooks.checkpoint.intervl`` is stored
by ``CheckpointHook`` and crashes at the first save, losing the work done
until then. :func:`check_config_schema` checks the whole config before the
Runner is built, against the ``__init__`` signature of the registered class
each sub-dict names:

* ``model`` and every sub-module dict under it (``backbone``, ``neck``,
  ``head``, ``decode_head``, losses, ...; ``*_cfg`` dicts such as
  ``norm_cfg`` / ``init_cfg`` are built by helpers that pop keys and are
  not checked);
* ``optim_wrapper`` (+ ``optimizer`` against e.g. ``torch.optim.SGD``,
  ``paramwise_cfg`` against the default constructor's keys);
* ``param_scheduler`` entries; ``default_hooks`` / ``custom_hooks``;
* ``train_cfg`` / ``val_cfg`` / ``test_cfg`` against the loop classes, with
  ``max_iters`` / ``max_epochs`` positive integers;
* the dataloaders, their samplers, datasets (wrappers recursively) and
  pipelines; evaluators; visualizer; log processor; randomness.

The keys a class accepts come from :func:`.signature_keys.accepted_keys`
(a class that swallows ``**kwargs`` accepts any key). Unknown types are
left to the builders, which name them.

A violation is a :class:`~medssl.utils.config.ConfigKeyError` with one line:
``<config>: unknown key 'optim_wrapper.optimizer.lrr' for SGD; did you mean
'lr'?``.
"""
import difflib
from typing import Any, Callable, Iterable, Optional

from .config import ConfigKeyError
from .signature_keys import accepted_keys

__all__ = ['check_config_schema']

#: keys mmengine's builders handle themselves in every ``dict(type=...)``
_BUILDER_KEYS = frozenset({'type', '_scope_', '_delete_'})
#: what ``Runner.build_dataloader`` pops before ``DataLoader(**cfg)``
_DATALOADER_EXTRA = frozenset({
    'dataset', 'sampler', 'batch_sampler', 'collate_fn', 'worker_init_fn',
    'num_batch_per_epoch', 'disable_subprocess_warning'})
#: keys ``DefaultOptimWrapperConstructor`` reads from ``paramwise_cfg``
_PARAMWISE_KEYS = frozenset({
    'custom_keys', 'bias_lr_mult', 'bias_decay_mult', 'norm_decay_mult',
    'dwconv_decay_mult', 'flat_decay_mult', 'dcn_offset_lr_mult',
    'bypass_duplicate'})


class _Checker:
    """Walks one config; ``source`` names it in the messages."""

    def __init__(self, source: str, scope: Optional[str]):
        self.source = source
        self.scope = scope

    # -- helpers -----------------------------------------------------------
    def resolve(self, registry, type_: Any, scope: Optional[str]):
        """The class / function ``type_`` names in ``registry`` (None if
        not found: the builder reports unknown types itself)."""
        if not isinstance(type_, str):
            return type_ if callable(type_) else None
        try:
            with registry.switch_scope_and_registry(scope) as reg:
                return reg.get(type_)
        except Exception:  # noqa: BLE001 -- unknown scope / import error
            return None

    def fail(self, path: str, key: str, owner: str,
             valid: Iterable[str]) -> None:
        valid = sorted(valid)
        best = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
        if best:
            hint = f"; did you mean '{best[0]}'?"
        else:
            hint = f" (accepted: {', '.join(valid)})" if valid else \
                ' (it takes no arguments)'
        raise ConfigKeyError(f"{self.source}: unknown key '{path}.{key}' "
                             f'for {owner}{hint}')

    def keys(self, cfg: dict, path: str, valid: Iterable[str],
             owner: str) -> None:
        valid = set(valid) | _BUILDER_KEYS
        for key in cfg:
            if key not in valid:
                self.fail(path, key, owner, valid - _BUILDER_KEYS)

    def typed(self, cfg: Any, path: str, registry, default_type=None,
              extra: Iterable[str] = (), drop: Iterable[str] = (),
              scope: Optional[str] = None) -> Optional[Any]:
        """Check ``cfg`` (a ``dict(type=...)``) against its class; returns
        the class (None when it is not a dict or not resolvable)."""
        if not isinstance(cfg, dict):
            return None
        scope = cfg.get('_scope_', scope or self.scope)
        type_ = cfg.get('type', default_type)
        obj = self.resolve(registry, type_, scope) if type_ else None
        if obj is None:
            return None
        valid = accepted_keys(obj)
        if valid is not None:
            name = getattr(obj, '__name__', str(type_))
            self.keys(cfg, path, (valid - set(drop)) | set(extra), name)
        return obj

    def each(self, cfgs: Any, path: str, fn: Callable[[Any, str], Any]):
        """``fn`` on a dict, or on every item of a list/tuple."""
        if isinstance(cfgs, (list, tuple)):
            for i, c in enumerate(cfgs):
                fn(c, f'{path}.{i}')
        elif cfgs is not None:
            fn(cfgs, path)

    # -- sections ----------------------------------------------------------
    def model(self, cfg: Any, path: str, scope=None) -> None:
        """A model dict and, recursively, every sub-module dict in it."""
        from mmengine.registry import MODELS
        if isinstance(cfg, (list, tuple)):
            for i, c in enumerate(cfg):
                self.model(c, f'{path}.{i}', scope)
            return
        if not isinstance(cfg, dict) or 'type' not in cfg:
            return
        scope = cfg.get('_scope_', scope or self.scope)
        if self.typed(cfg, path, MODELS, scope=scope) is None:
            return
        for key, value in cfg.items():
            # *_cfg dicts (norm/act/conv/init/train/test) are consumed by
            # helpers that pop their own keys: not a constructor call
            if not key.endswith('_cfg') and key not in _BUILDER_KEYS:
                self.model(value, f'{path}.{key}', scope)

    def transform(self, cfg: Any, path: str) -> None:
        from mmengine.registry import TRANSFORMS
        if isinstance(cfg, (list, tuple)):
            for i, c in enumerate(cfg):
                self.transform(c, f'{path}.{i}')
            return
        if not isinstance(cfg, dict) or 'type' not in cfg:
            return
        if self.typed(cfg, path, TRANSFORMS) is None:
            return
        for key, value in cfg.items():  # RandomApply / MultiView children
            if isinstance(value, (list, tuple, dict)):
                self.transform(value, f'{path}.{key}')

    def dataset(self, cfg: Any, path: str) -> None:
        from mmengine.registry import DATASETS
        if not isinstance(cfg, dict):
            return
        self.typed(cfg, path, DATASETS)
        self.each(cfg.get('pipeline'), f'{path}.pipeline', self.transform)
        self.each(cfg.get('dataset'), f'{path}.dataset', self.dataset)
        self.each(cfg.get('datasets'), f'{path}.datasets', self.dataset)

    def dataloader(self, cfg: Any, path: str) -> None:
        from mmengine.registry import DATA_SAMPLERS
        from torch.utils.data import DataLoader
        if not isinstance(cfg, dict):
            return
        valid = (accepted_keys(DataLoader) - {'dataset', 'sampler'}) | \
            _DATALOADER_EXTRA
        self.keys(cfg, path, valid, 'DataLoader')
        self.typed(cfg.get('sampler'), f'{path}.sampler', DATA_SAMPLERS,
                   drop={'dataset'})
        self.typed(cfg.get('batch_sampler'), f'{path}.batch_sampler',
                   DATA_SAMPLERS, drop={'sampler', 'batch_size'})
        self.dataset(cfg.get('dataset'), f'{path}.dataset')

    def optim_wrapper(self, cfg: Any, path: str) -> None:
        from mmengine.registry import OPTIM_WRAPPERS, OPTIMIZERS
        if not isinstance(cfg, dict) or 'optimizer' not in cfg:
            return  # several named wrappers: a custom constructor's schema
        self.typed(cfg, path, OPTIM_WRAPPERS, default_type='OptimWrapper',
                   extra={'optimizer', 'paramwise_cfg', 'constructor'})
        self.typed(cfg['optimizer'], f'{path}.optimizer', OPTIMIZERS,
                   drop={'params'})
        paramwise = cfg.get('paramwise_cfg')
        constructor = str(cfg.get('constructor',
                                  'DefaultOptimWrapperConstructor'))
        if isinstance(paramwise, dict) and \
                constructor.split('.')[-1] == 'DefaultOptimWrapperConstructor':
            self.keys(paramwise, f'{path}.paramwise_cfg', _PARAMWISE_KEYS,
                      'DefaultOptimWrapperConstructor')

    def schedulers(self, cfg: Any, path: str) -> None:
        from mmengine.registry import PARAM_SCHEDULERS
        if isinstance(cfg, dict) and 'type' not in cfg:
            for name, sub in cfg.items():  # one list per named optimizer
                self.schedulers(sub, f'{path}.{name}')
            return
        self.each(cfg, path, lambda c, p: self.typed(
            c, p, PARAM_SCHEDULERS, extra={'convert_to_iter_based'},
            drop={'optimizer'}))

    def hooks(self, cfg: Any, path: str) -> None:
        from mmengine.registry import HOOKS

        def one(c, p):
            self.typed(c, p, HOOKS, extra={'priority'})
        if isinstance(cfg, dict) and 'type' not in cfg:
            for name, sub in cfg.items():  # default_hooks: name -> hook
                one(sub, f'{path}.{name}')
        else:
            self.each(cfg, path, one)

    def loop(self, cfg: Any, path: str, default: str,
             drop: Iterable[str]) -> None:
        from mmengine.registry import LOOPS
        if not isinstance(cfg, dict) or not cfg:
            return
        extra = set()
        if 'type' not in cfg and 'by_epoch' in cfg:  # Runner's shortcut
            default = 'EpochBasedTrainLoop' if cfg['by_epoch'] \
                else 'IterBasedTrainLoop'
            extra = {'by_epoch'}
        self.typed(cfg, path, LOOPS, default_type=default, extra=extra,
                   drop=drop)
        for key in ('max_iters', 'max_epochs'):
            if key not in cfg:
                continue
            value = cfg[key]
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigKeyError(
                    f'{self.source}: {path}.{key}={value!r} is not an '
                    'integer: it must be a positive integer')
            if value <= 0:
                raise ConfigKeyError(
                    f'{self.source}: {path}.{key}={value} trains nothing: '
                    'it must be a positive integer')

    def evaluator(self, cfg: Any, path: str) -> None:
        from mmengine.registry import EVALUATOR, METRICS
        if isinstance(cfg, dict) and 'metrics' in cfg:
            self.typed(cfg, path, EVALUATOR, default_type='Evaluator')
            self.each(cfg['metrics'], f'{path}.metrics', self.evaluator)
            return
        self.each(cfg, path, lambda c, p: self.typed(c, p, METRICS))

    def check(self, cfg: dict) -> None:
        from mmengine.registry import LOG_PROCESSORS, VISBACKENDS, VISUALIZERS
        from mmengine.runner import Runner
        self.model(cfg.get('model'), 'model')
        self.optim_wrapper(cfg.get('optim_wrapper'), 'optim_wrapper')
        self.schedulers(cfg.get('param_scheduler'), 'param_scheduler')
        self.hooks(cfg.get('default_hooks'), 'default_hooks')
        self.hooks(cfg.get('custom_hooks'), 'custom_hooks')
        self.loop(cfg.get('train_cfg'), 'train_cfg', None,
                  {'runner', 'dataloader'})
        self.loop(cfg.get('val_cfg'), 'val_cfg', 'ValLoop',
                  {'runner', 'dataloader', 'evaluator'})
        self.loop(cfg.get('test_cfg'), 'test_cfg', 'TestLoop',
                  {'runner', 'dataloader', 'evaluator'})
        for split in ('train', 'val', 'test'):
            self.dataloader(cfg.get(f'{split}_dataloader'),
                            f'{split}_dataloader')
        self.evaluator(cfg.get('val_evaluator'), 'val_evaluator')
        self.evaluator(cfg.get('test_evaluator'), 'test_evaluator')
        visualizer = cfg.get('visualizer')
        self.typed(visualizer, 'visualizer', VISUALIZERS)
        if isinstance(visualizer, dict):
            self.each(visualizer.get('vis_backends'),
                      'visualizer.vis_backends',
                      lambda c, p: self.typed(c, p, VISBACKENDS))
        self.typed(cfg.get('log_processor'), 'log_processor',
                   LOG_PROCESSORS, default_type='LogProcessor')
        if isinstance(cfg.get('randomness'), dict):
            self.keys(cfg['randomness'], 'randomness',
                      accepted_keys(Runner.set_randomness) - {'self'},
                      'Runner.set_randomness')


def check_config_schema(cfg: dict, source: str = 'config') -> None:
    """Raise :class:`~medssl.utils.config.ConfigKeyError` for a nested key
    the class its dict builds does not accept (see the module docstring),
    and for a ``train_cfg`` that trains nothing.

    The registries must be populated first
    (``medssl.utils.register_all_modules``). ``source`` (the config path)
    starts every message.
    """
    _Checker(source, cfg.get('default_scope')).check(cfg)

"""``VerifiedPretrained``: mmengine's ``Pretrained`` init plus checks.

mmengine's ``Pretrained`` init loads with ``strict=False`` and only *logs*
missing keys and shape mismatches, so a checkpoint that does not fit the
config silently leaves a randomly initialised backbone. ``VerifiedPretrained``
takes the same arguments and

* raises ``ValueError`` if any tensor has a different shape than the module's;
* raises ``ValueError`` if more than ``max_missing_ratio`` of the module's keys
  (``num_batches_tracked`` ignored) are missing from the checkpoint;
* raises if nothing at all matches;
* logs missing and unexpected keys (as a warning) otherwise;
* for a module with a ``whitening`` (:class:`WhitenedResNet`): if the
  checkpoint has no ``whitening.*`` under the prefix but has the raw SSL keys
  ``decorrelation.running_mean`` / ``decorrelation.running_whitening`` (at the
  checkpoint's top level), folds them into the 1x1 conv; if neither exists it
  raises.

Usage in a config (default scope ``medssl``)::

    backbone=dict(type='mmseg.ResNet', ...,
                  init_cfg=dict(type='VerifiedPretrained',
                                checkpoint='ssl.pth', prefix='backbone.'))
"""
import logging
from typing import Dict, Optional, Sequence

import torch
from mmengine.logging import print_log
from mmengine.runner.checkpoint import load_state_dict

from medssl.registry import WEIGHT_INITIALIZERS
from medssl.utils.checkpoint import load_checkpoint
from .whitened_resnet import fold_decorrelation

__all__ = ['VerifiedPretrained', 'verify_and_load', 'extract_state_dict']

DECORR_MEAN = 'decorrelation.running_mean'
DECORR_WHITENING = 'decorrelation.running_whitening'


def extract_state_dict(checkpoint) -> Dict[str, torch.Tensor]:
    """The flat state dict of a loaded checkpoint object."""
    if isinstance(checkpoint, dict) and 'state_dict' in checkpoint:
        checkpoint = checkpoint['state_dict']
    if not isinstance(checkpoint, dict):
        raise TypeError(f'not a checkpoint: {type(checkpoint)}')
    # strip DDP wrappers
    return {(k[7:] if k.startswith('module.') else k): v
            for k, v in checkpoint.items()}


def _strip_prefix(state: Dict[str, torch.Tensor],
                  prefix: Optional[str]) -> Dict[str, torch.Tensor]:
    if not prefix:
        return dict(state)
    if not prefix.endswith('.'):
        prefix += '.'
    return {
        k[len(prefix):]: v
        for k, v in state.items() if k.startswith(prefix)
    }


def _following_norm(conv_key: str) -> Optional[str]:
    """Prefix of the BatchNorm that follows a ResNet conv weight
    (``layer1.0.conv2.weight`` -> ``layer1.0.bn2``, ``downsample.0`` ->
    ``downsample.1``, stem ``conv1`` -> ``bn1``); None when there is none."""
    head, _, name = conv_key[:-len('.weight')].rpartition('.')
    head = head + '.' if head else ''
    if name.startswith('conv') and name[4:].isdigit():
        return head + 'bn' + name[4:]
    if name == '0' and head.endswith('downsample.'):
        return head + '1'
    return None


def init_norm(weight: torch.Tensor) -> float:
    """Expected norm of a conv weight (out, in, k, k) under the Kaiming
    normal init (fan_out, ReLU gain) that a from-scratch mmseg/mmcv ResNet
    gets: sqrt(numel * 2 / fan_out) = sqrt(2 * in)."""
    return (2.0 * weight.shape[1]) ** 0.5


def rescale_to_init(state: Dict[str, torch.Tensor]) -> Dict[str, float]:
    """Give every conv weight that feeds a BatchNorm the norm of a fresh
    from-scratch init (:func:`init_norm`), and scale that BN's running
    statistics with it (mean x s, var x s^2): the network computes the same
    function (a BN output does not depend on the scale of its input conv),
    but its weights are back on the scale the fine-tuning lr was chosen
    for. With BN the effective step of such a weight is lr / |w|^2, so
    weights whose norm changed in pretraining adapt at another speed than a
    random init does under the same lr.

    Modifies ``state`` in place; returns ``{conv key: scale}``."""
    scales = {}
    for key, w in list(state.items()):
        if not key.endswith('.weight') or w.dim() != 4:
            continue
        bn = _following_norm(key)
        if bn is None or f'{bn}.running_var' not in state:
            continue
        norm = float(w.double().norm())
        if norm == 0:
            continue
        s = init_norm(w) / norm
        state[key] = w * s
        state[f'{bn}.running_mean'] = state[f'{bn}.running_mean'] * s
        state[f'{bn}.running_var'] = state[f'{bn}.running_var'] * s * s
        scales[key] = s
    return scales


def verify_and_load(module: torch.nn.Module,
                    full_state: Dict[str, torch.Tensor],
                    prefix: Optional[str] = None,
                    max_missing_ratio: float = 0.5,
                    source: str = '<state_dict>',
                    exclude: Sequence[str] = (),
                    rescale: bool = False) -> dict:
    """Check ``full_state`` (prefix stripped) against ``module`` and load it.

    ``exclude``: module key prefixes (e.g. ``'layer4.'``) not transferred:
    they keep their initialisation and do not count as missing.
    ``rescale``: :func:`rescale_to_init` the loaded conv weights.

    Returns a dict with ``missing``, ``unexpected`` and ``loaded`` key lists.
    """
    state = _strip_prefix(full_state, prefix)
    if not state:
        raise ValueError(f'{source}: no keys with prefix {prefix!r} '
                         f'(first keys: {list(full_state)[:5]})')
    exclude = tuple(exclude)
    if exclude:
        state = {k: v for k, v in state.items() if not k.startswith(exclude)}

    whitening = getattr(module, 'whitening', None)
    if whitening is not None and hasattr(whitening, 'load_folded') \
            and 'whitening.weight' not in state:
        if DECORR_MEAN in full_state and DECORR_WHITENING in full_state:
            weight, bias = fold_decorrelation(full_state[DECORR_MEAN],
                                              full_state[DECORR_WHITENING])
            state['whitening.weight'] = weight
            state['whitening.bias'] = bias
            print_log(f'{source}: folded {DECORR_MEAN} / {DECORR_WHITENING} '
                      'into whitening 1x1 conv', logger='current')
        else:
            raise ValueError(
                f'{source}: {type(module).__name__} needs the whitening but '
                'the checkpoint has neither whitening.weight/bias (converted) '
                f'nor {DECORR_MEAN}/{DECORR_WHITENING} (raw SSL)')

    own = {k: v for k, v in module.state_dict().items()
           if not (exclude and k.startswith(exclude))}
    own_keys = [k for k in own if 'num_batches_tracked' not in k]
    mismatched = [
        f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}'
        for k, v in state.items() if k in own and tuple(v.shape) != tuple(
            own[k].shape)
    ]
    if mismatched:
        raise ValueError(
            f'{source}: {len(mismatched)} tensors do not match the model '
            f'({type(module).__name__}); the backbone in the config differs '
            'from the checkpoint\'s:\n  ' + '\n  '.join(mismatched[:20]))
    missing = [k for k in own_keys if k not in state]
    unexpected = [k for k in state if k not in own]
    loaded = [k for k in state if k in own]
    if not loaded:
        raise ValueError(f'{source}: no checkpoint key matches the model '
                         f'(prefix {prefix!r})')
    ratio = len(missing) / max(len(own_keys), 1)
    if ratio > max_missing_ratio:
        raise ValueError(
            f'{source}: {len(missing)}/{len(own_keys)} model keys missing '
            f'from the checkpoint (> {max_missing_ratio:.0%}); e.g. {missing[:10]}')
    if missing:
        print_log(f'{source}: missing keys (left as initialised): {missing}',
                  logger='current', level=logging.WARNING)
    if unexpected:
        print_log(f'{source}: unexpected keys (ignored): {unexpected}',
                  logger='current', level=logging.WARNING)
    if rescale:
        scales = rescale_to_init(state)
        if scales:
            vals = list(scales.values())
            print_log(f'{source}: rescaled {len(vals)} conv weights to their '
                      f'initial norm (factors {min(vals):.3g}-{max(vals):.3g}'
                      ', BN statistics scaled alike)', logger='current')
    load_state_dict(module, {k: state[k] for k in loaded}, strict=False)
    n_loaded = sum('num_batches_tracked' not in k for k in loaded)
    print_log(f'{source}: loaded {n_loaded}/{len(own_keys)} tensors into '
              f'{type(module).__name__}', logger='current')
    return dict(missing=missing, unexpected=unexpected, loaded=loaded)


@WEIGHT_INITIALIZERS.register_module()
class VerifiedPretrained:
    """Like mmengine's ``Pretrained`` init, but fails on mismatches.

    Args:
        checkpoint (str): checkpoint path/URL (an http(s) URL is downloaded
            once into torch.hub's ``checkpoints`` folder under a name keyed
            by the whole URL: :func:`medssl.utils.url_cache.url_cache_path`).
        prefix (str, optional): keep only keys with this prefix (stripped),
            e.g. ``'backbone.'``. ``None`` loads keys as they are.
        map_location (str): defaults to ``'cpu'``.
        max_missing_ratio (float): the largest tolerated fraction of model
            keys absent from the checkpoint. Defaults to 0.5.
        exclude (Sequence[str]): module key prefixes left as initialised
            (e.g. ``['layer4.']`` transfers the stem and layers 1-3 only).
        rescale (bool): give each conv weight followed by BN the norm of its
            fresh initialisation, BN statistics scaled alike (the same
            function; see :func:`rescale_to_init`).
    """

    def __init__(self, checkpoint: str, prefix: Optional[str] = None,
                 map_location: str = 'cpu', max_missing_ratio: float = 0.5,
                 exclude: Sequence[str] = (), rescale: bool = False):
        self.checkpoint = checkpoint
        self.exclude = tuple(exclude)
        self.rescale = rescale
        self.prefix = prefix
        self.map_location = map_location
        self.max_missing_ratio = max_missing_ratio

    def __call__(self, module):
        print_log(f'load {self.prefix or "all keys"} from {self.checkpoint} '
                  f'(verified)', logger='current')
        # weights-only read (no code from the file runs), errors name it
        ckpt = load_checkpoint(self.checkpoint, self.map_location)
        verify_and_load(module, extract_state_dict(ckpt), self.prefix,
                        self.max_missing_ratio, source=str(self.checkpoint),
                        exclude=self.exclude, rescale=self.rescale)
        if hasattr(module, '_params_init_info'):
            from mmengine.model.weight_init import update_init_info
            update_init_info(
                module,
                init_info=f'{type(self).__name__}: load from '
                f'{self.checkpoint}')

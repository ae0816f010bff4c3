"""SSL checkpoint -> mmseg backbone checkpoint.

Output format (what ``tools/model_converters/selfsup2mmseg.py`` writes)::

    {'meta': {...},
     'state_dict': {'backbone.<resnet keys>': ...,
                    'backbone.whitening.weight': (C, C, 1, 1),   # if present
                    'backbone.whitening.bias': (C,)}}

Keys keep the ``backbone.`` prefix, so the file loads

* into a backbone with ``init_cfg=dict(type='VerifiedPretrained' (or
  'Pretrained'), checkpoint=OUT, prefix='backbone.')`` -- the recommended way;
* into a whole ``EncoderDecoder`` with ``load_from=OUT`` (the head stays
  random).

The whitening is the folded ``EigenDecorrelationNeck`` running statistics
(``weight = blockdiag(W)``, ``bias = -blockdiag(W) mu``); ``mmseg.ResNet``
ignores it (logged as unexpected keys), ``WhitenedResNet`` requires it.
"""
from collections import OrderedDict
from typing import Dict

import torch

from medssl.models.backbones.verified_pretrained import (DECORR_MEAN,
                                                         DECORR_WHITENING,
                                                         extract_state_dict)
from medssl.models.backbones.whitened_resnet import fold_decorrelation

__all__ = ['convert_selfsup_to_mmseg', 'convert_file']


def convert_selfsup_to_mmseg(checkpoint, fold_whitening: bool = True
                             ) -> Dict[str, torch.Tensor]:
    """Convert a loaded SSL checkpoint (dict with ``state_dict`` or a flat
    state dict) to a flat ``backbone.*`` state dict.

    Keys of a momentum (key) encoder, necks, heads, queues are dropped. Raises
    ``ValueError`` if the checkpoint has no ``backbone.*`` keys, or only one of
    the two decorrelation buffers.
    """
    state = extract_state_dict(checkpoint)
    out = OrderedDict((k, v.detach().clone()) for k, v in state.items()
                      if k.startswith('backbone.'))
    if not out:
        raise ValueError('no backbone.* keys in the checkpoint (first keys: '
                         f'{list(state)[:5]})')
    has_mean, has_w = DECORR_MEAN in state, DECORR_WHITENING in state
    if has_mean != has_w:
        raise ValueError('checkpoint has only one of '
                         f'{DECORR_MEAN} / {DECORR_WHITENING}')
    if fold_whitening and has_mean:
        weight, bias = fold_decorrelation(state[DECORR_MEAN],
                                          state[DECORR_WHITENING])
        out['backbone.whitening.weight'] = weight
        out['backbone.whitening.bias'] = bias
    return out


def convert_file(src: str, dst: str, fold_whitening: bool = True) -> dict:
    """Read ``src`` (weights only: no code from the file runs), convert,
    save ``dst`` atomically; returns a small summary. A bad ``src`` raises
    :class:`~medssl.utils.checkpoint.CheckpointError` naming it."""
    import io

    from medssl.utils.atomic import atomic_write_bytes
    from medssl.utils.checkpoint import CheckpointError, load_checkpoint
    ckpt = load_checkpoint(src, map_location='cpu')
    try:
        state = convert_selfsup_to_mmseg(ckpt, fold_whitening)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f'{src}: {e}') from e
    meta = dict(source=str(src), converter='medssl selfsup2mmseg',
                whitening='backbone.whitening.weight' in state)
    buf = io.BytesIO()
    torch.save(dict(meta=meta, state_dict=state), buf)
    atomic_write_bytes(dst, buf.getvalue())
    return dict(num_tensors=len(state), whitening=meta['whitening'])

"""Strict loading of a checkpoint into a model, naming what does not fit."""
from collections import Counter
from typing import Dict, List, Optional, Tuple

import torch

from .errors import CheckpointError
from .loading import load_checkpoint

__all__ = ['extract_state_dict', 'load_model_checkpoint']


def extract_state_dict(checkpoint: dict,
                       path: str = '<checkpoint>') -> Dict[str, torch.Tensor]:
    """The flat state dict of a loaded checkpoint, ``module.`` removed."""
    if 'state_dict' in checkpoint:
        checkpoint = checkpoint['state_dict']
    if not isinstance(checkpoint, dict) or not all(
            torch.is_tensor(v) for v in checkpoint.values()):
        raise CheckpointError(f'{path}: no state dict of tensors in it')
    return {(k[7:] if k.startswith('module.') else k): v
            for k, v in checkpoint.items()}


def _prefixes(keys, depth: int = 2) -> str:
    """``decode_head.conv_seg.* (2), head.bias (1)``: keys grouped by their
    first ``depth`` components."""
    counts = Counter(k if k.count('.') < depth else
                     '.'.join(k.split('.')[:depth]) + '.*' for k in keys)
    return ', '.join(f'{p} ({n})' for p, n in sorted(counts.items()))


def key_mismatches(own: dict, state: dict, skip: Optional[str] = None
                   ) -> Tuple[List[str], List[str], List[str]]:
    """(missing, unexpected, shape mismatches) of a checkpoint ``state``
    against a model's ``own`` state dict; keys containing ``skip`` are not
    counted as missing or unexpected."""
    counted = (lambda k: skip not in k) if skip else (lambda k: True)
    missing = [k for k in own if k not in state and counted(k)]
    unexpected = [k for k in state if k not in own and counted(k)]
    shapes = [f'{k}: checkpoint {tuple(state[k].shape)} vs model '
              f'{tuple(v.shape)}' for k, v in own.items()
              if k in state and torch.is_tensor(state[k])
              and tuple(state[k].shape) != tuple(v.shape)]
    return missing, unexpected, shapes


def mismatch_problems(missing: List[str], unexpected: List[str],
                      shapes: List[str], missing_text: str) -> List[str]:
    """The message parts of :func:`key_mismatches` (keys as prefixes)."""
    problems = []
    if missing:
        problems.append(f'{missing_text}: {_prefixes(missing)}')
    if unexpected:
        problems.append(f'{len(unexpected)} unexpected keys: '
                        f'{_prefixes(unexpected)}')
    if shapes:
        problems.append(f'{len(shapes)} shape mismatches: ' +
                        '; '.join(shapes[:5]))
    return problems


def load_model_checkpoint(model: torch.nn.Module, path: str,
                          max_mismatch: int = 0,
                          map_location='cpu') -> dict:
    """Load ``path`` into ``model`` strictly; returns the checkpoint.

    ``max_mismatch``: how many missing + unexpected keys are tolerated (BN
    ``num_batches_tracked`` never counts). More, or any shape mismatch, is a
    :class:`CheckpointError` naming the key prefixes, e.g. an SSL checkpoint
    given for a segmentor: ``missing decode_head.conv_seg.* (2), ...``.
    """
    ckpt = load_checkpoint(path, map_location)
    state = extract_state_dict(ckpt, path)
    own = model.state_dict()
    missing, unexpected, shapes = key_mismatches(
        own, state, skip='num_batches_tracked')
    problems = []
    if len(missing) + len(unexpected) > max_mismatch:
        problems = mismatch_problems(
            missing, unexpected, [],
            f'{len(missing)}/{len(own)} model keys missing')
    problems += mismatch_problems([], [], shapes, '')
    if problems:
        raise CheckpointError(
            f'{path}: does not fit {type(model).__name__}: ' +
            ' | '.join(problems) + ' (a pretraining checkpoint for a '
            'segmentation config? convert it with selfsup2mmseg and train '
            'the head first)' * bool(missing and not shapes))
    model.load_state_dict({k: v for k, v in state.items() if k in own},
                          strict=False)
    return ckpt

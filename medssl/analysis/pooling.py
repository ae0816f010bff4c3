"""One rule for turning a module output into an (N, D) embedding.

Used by the collapse report's embeddings (:mod:`medssl.analysis.embeddings`) and the
training-time :class:`~medssl.engine.hooks.CollapseMonitorHook`, so both
measure the same vectors: a backbone's output is a tuple of stage maps (the
*last* one is the representation), a neck's output is a tuple whose *first*
element is the projection; a feature map ``(N, C, H, W)`` is global-average
pooled to ``(N, C)``.
"""
from typing import Optional

import torch

__all__ = ['pool_embedding']


def pool_embedding(out, pick: str = 'last') -> Optional[torch.Tensor]:
    """``(N, D)`` embedding of a (nested) module output.

    Args:
        out: a tensor or nested lists/tuples of tensors.
        pick: ``'last'`` (backbone stages) or ``'first'`` (neck output)
            element at every nesting level.

    Returns:
        The picked tensor, spatially averaged if 4D, flattened to ``(N, -1)``;
        None if there is no tensor (an empty tuple, a non-tensor).
    """
    if pick not in ('first', 'last'):
        raise ValueError(f"pick must be 'first' or 'last', got {pick!r}")
    index = 0 if pick == 'first' else -1
    t = out
    while isinstance(t, (list, tuple)):
        if len(t) == 0:
            return None
        t = t[index]
    if not isinstance(t, torch.Tensor):
        return None
    if t.dim() == 4:
        t = t.mean(dim=(2, 3))
    return t.reshape(t.shape[0], -1)

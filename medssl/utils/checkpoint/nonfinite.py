"""Non-finite (NaN/inf) weights: where they are, and whether to accept them.

Used by the checkpoint content check and by the training hook that stops a
run whose loss or weights went non-finite.
"""
import os
from typing import List

import torch

__all__ = ['non_finite_entries', 'allow_nonfinite_default']


def allow_nonfinite_default() -> bool:
    """Whether non-finite weights are accepted when a caller does not say:
    only with the environment variable ``MEDSSL_ALLOW_NONFINITE=1`` (set by
    ``tools/train.py --allow-nonfinite``)."""
    return os.environ.get('MEDSSL_ALLOW_NONFINITE', '') in ('1', 'true',
                                                            'yes')


def non_finite_entries(obj, prefix: str = '', limit: int = 10) -> List[str]:
    """Names (``a.b.c``) of the floating tensors in ``obj`` holding NaN/inf."""
    out: List[str] = []

    def walk(o, name):
        if len(out) >= limit:
            return
        if torch.is_tensor(o):
            if o.is_floating_point() and not torch.isfinite(o).all():
                n = int((~torch.isfinite(o)).sum())
                out.append(f'{name} ({n}/{o.numel()} non-finite)')
        elif isinstance(o, dict):
            for k, v in o.items():
                walk(v, f'{name}.{k}' if name else str(k))
        elif isinstance(o, (list, tuple)):
            for i, v in enumerate(o):
                walk(v, f'{name}.{i}' if name else str(i))

    walk(obj, prefix)
    return out

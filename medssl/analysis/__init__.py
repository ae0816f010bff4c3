"""Collapse analysis and data-efficiency protocol."""
from .spectrum import (alignment, collapse_metrics, covariance_spectrum,
                       effective_rank, effective_rank_from_values,
                       embedding_spectrum, l2_normalize, normalized_std,
                       rankme, uniformity)

__all__ = [
    'alignment', 'collapse_metrics', 'covariance_spectrum', 'effective_rank',
    'effective_rank_from_values', 'embedding_spectrum', 'l2_normalize',
    'normalized_std', 'rankme', 'uniformity'
]
from . import data_efficiency, embeddings, spectrum  # noqa: E402,F401

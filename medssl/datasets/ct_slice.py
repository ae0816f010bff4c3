"""CTSliceDataset (owner: data)."""
__all__ = []

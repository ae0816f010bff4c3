"""BTCVDataset (owner: data)."""
__all__ = []

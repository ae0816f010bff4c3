"""AbdomenCT1KDataset (owner: data)."""
__all__ = []

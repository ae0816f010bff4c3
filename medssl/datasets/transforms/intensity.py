"""HUWindow and HU-safe intensity augmentations (owner: data)."""
__all__ = []

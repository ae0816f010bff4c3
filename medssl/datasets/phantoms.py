"""CT phantoms (owner: data)."""
__all__ = []

"""LoadCTSlice (owner: data)."""
__all__ = []

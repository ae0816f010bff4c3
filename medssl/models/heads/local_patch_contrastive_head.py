"""LocalPatchContrastiveHead (owner: method)."""
__all__ = []

"""Whitening functions (owner: method)."""
__all__ = []

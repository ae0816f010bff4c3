"""Collapse analysis and data-efficiency protocol (owner: analysis)."""
__all__ = []

"""MedMoCo (owner: method)."""
__all__ = []

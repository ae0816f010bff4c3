"""View transforms that record crop/flip (owner: method)."""
__all__ = []

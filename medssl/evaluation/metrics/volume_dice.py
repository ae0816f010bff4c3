"""VolumeDiceMetric (owner: downstream)."""
__all__ = []

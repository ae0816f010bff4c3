"""CollapseMonitorHook (owner: analysis)."""
__all__ = []

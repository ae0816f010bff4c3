"""EigenDecorrelationNeck (owner: method)."""
__all__ = []

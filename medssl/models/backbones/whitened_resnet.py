"""WhitenedResNet (owner: downstream)."""
__all__ = []

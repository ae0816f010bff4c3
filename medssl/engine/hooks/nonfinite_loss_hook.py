"""Non-finite loss guard (owner: lead)."""
__all__ = []

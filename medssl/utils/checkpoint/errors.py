"""The one error of checkpoint reading."""

__all__ = ['CheckpointError']


class CheckpointError(RuntimeError):
    """A checkpoint that cannot (or must not) be read; names the file."""

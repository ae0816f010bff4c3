"""The analysis PNGs' common steps: a headless figure, finished axes and an
all-or-nothing write (a killed run leaves the old PNG or none, never half a
file)."""
import io
from typing import Tuple

from medssl.utils.atomic import atomic_write_bytes

__all__ = ['subplots', 'finish_axes', 'save_figure']


def subplots(*args, **kwargs) -> Tuple[object, object]:
    """``plt.subplots`` on the Agg backend (no display needed)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt.subplots(*args, **kwargs)


def finish_axes(ax, xlabel: str, ylabel: str, legend_size: int = 7) -> None:
    """Axis labels, a light grid and the legend."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=legend_size)


def save_figure(fig, path: str, dpi: int = 120) -> None:
    """Lay out ``fig``, write it to ``path`` (PNG) atomically and close it."""
    import matplotlib.pyplot as plt
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format='png', dpi=dpi)
    plt.close(fig)
    atomic_write_bytes(path, buf.getbuffer(), durable=False)

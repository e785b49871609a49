"""Trial figures (seaborn/matplotlib): each takes tidy frames and an optional ``ax``.

Plot functions return their axes and never save or show; :func:`save_figure` is the
one place figures are written, with reproducible bytes.
"""

from crtstats.plots._figures import caterpillar, domain_profile, forest, trajectories
from crtstats.plots._save import FigureFormat, save_figure

__all__ = [
    "FigureFormat",
    "caterpillar",
    "domain_profile",
    "forest",
    "save_figure",
    "trajectories",
]

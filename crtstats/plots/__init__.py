"""Trial figures (seaborn/matplotlib): each takes tidy frames and an optional ``ax``.

Plot functions return their axes and never save or show; :func:`render_figure` gives a
figure's file bytes, reproducibly, and :func:`crtstats.save_figure` writes them.
"""

from crtstats.plots._estimands import cluster_size, cluster_size_frame
from crtstats.plots._figures import caterpillar, domain_profile, forest, trajectories
from crtstats.plots._forest import forest_panels, readable_terms
from crtstats.plots._power import power_curve
from crtstats.plots._questionnaire import questionnaire_means, team_means
from crtstats.plots._render import FIGURE_FORMATS, FigureFormat, render_figure

__all__ = [
    "FIGURE_FORMATS",
    "FigureFormat",
    "caterpillar",
    "cluster_size",
    "cluster_size_frame",
    "domain_profile",
    "forest",
    "forest_panels",
    "power_curve",
    "questionnaire_means",
    "readable_terms",
    "render_figure",
    "team_means",
    "trajectories",
]

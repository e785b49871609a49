"""Power curve: simulated power of each analysis over an effect or cluster-count grid."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from crtstats._options import require_columns
from crtstats.exceptions import InvalidParameterError

__all__ = ["power_curve"]

_NEEDED = ("analysis", "estimand", "power", "power_mcse")


def _axes(ax: Axes | None) -> Axes:
    if ax is None:
        return Figure(figsize=(6.4, 4.4), layout="constrained").add_subplot()
    if not isinstance(ax, Axes):
        raise InvalidParameterError(f"ax must be a matplotlib Axes or None; got "
                                    f"{type(ax).__name__}.")
    return ax


def power_curve(summary: pd.DataFrame, *, x: str = "factor", alpha: float | None = 0.05,
                ax: Axes | None = None) -> Axes:
    """Simulated power against ``x``, one line per analysis and estimand.

    Parameters
    ----------
    summary
        A tidy frame with ``analysis``, ``estimand``, ``power``, ``power_mcse`` and the
        column ``x`` (such as :attr:`crtstats.power.SimulationResult.summary`).
    x
        The grid column: ``"factor"`` (scale factor of the design's effects) or
        ``"true_effect"``, or a cluster-count column.
    alpha
        Draw the significance level as a dotted line (None: no line).
    ax
        Axes to draw on; a new figure's axes when None.

    Returns
    -------
    matplotlib.axes.Axes
        Points joined by lines with bars of +/- 1.96 Monte Carlo SE.

    Raises
    ------
    MissingColumnError
        If a needed column is missing.
    InvalidParameterError
        If ``ax`` is not an Axes.

    Notes
    -----
    The bars are ``power +/- 1.96 sqrt(p (1 - p) / n)``, the Monte Carlo error of the
    simulation, not a confidence interval of the trial's power.

    Examples
    --------
    >>> frame = pd.DataFrame({"analysis": ["LMM"] * 3, "estimand": ["12m"] * 3,
    ...                       "factor": [0.0, 0.5, 1.0], "power": [0.05, 0.3, 0.8],
    ...                       "power_mcse": [0.01, 0.02, 0.02]})
    >>> power_curve(frame).get_ylabel()
    'power'

    In R: ``ggplot(d, aes(x, power)) + geom_line() + geom_errorbar()``.
    """
    require_columns(summary, (*_NEEDED, x), used_by="power_curve")
    ax = _axes(ax)
    for (analysis, estimand), group in summary.groupby(["analysis", "estimand"], sort=False):
        group = group.sort_values(x)
        grid = group[x].to_numpy(dtype=float)
        power = group["power"].to_numpy(dtype=float)
        half = 1.96 * group["power_mcse"].to_numpy(dtype=float)
        label = textwrap.fill(f"{analysis} ({estimand})", width=45)
        ax.errorbar(grid, power, yerr=half, marker="o", capsize=3, label=label)
    if alpha is not None:
        ax.axhline(alpha, color="0.5", linestyle=":", linewidth=1)
    ax.axhline(0.8, color="0.7", linestyle="--", linewidth=1)
    ax.set_ylim(0.0, 1.0)
    ax.set_yticks(np.linspace(0.0, 1.0, 6))
    ax.set_xlabel("scale factor of the design's effects" if x == "factor" else x)
    ax.set_ylabel("power")
    ax.legend(fontsize="small", frameon=False)
    return ax

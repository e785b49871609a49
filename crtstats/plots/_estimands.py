"""The informative-cluster-size figure: cluster means against cluster size by arm."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from crtstats.exceptions import ModelSpecificationError
from crtstats.plots._figures import ARM_COLOURS, _axes
from crtstats.schema import ARMS
from crtstats.tables import require_columns

__all__ = ["cluster_size", "cluster_size_frame"]


def cluster_size_frame(admissions: pd.DataFrame, teams: pd.DataFrame, *,
                       outcome: str = "admitted", period: str = "follow_up") -> pd.DataFrame:
    """One row per team: ``team_id``, ``arm``, ``size`` and ``observed`` (the mean).

    Parameters
    ----------
    admissions
        One row per service user and period, with ``team_id``, ``period`` and
        ``outcome``.
    teams
        ``team_id`` and ``arm``.
    outcome, period
        The 0/1 (or numeric) outcome and the period summarised; rows with a missing
        outcome are left out.

    Returns
    -------
    pandas.DataFrame
        The tidy frame :func:`cluster_size` draws.

    Raises
    ------
    SchemaValidationError
        If a column is missing.
    """
    require_columns(admissions, "admissions", ("team_id", "period", outcome))
    require_columns(teams, "teams", ("team_id", "arm"))
    rows = admissions[(admissions["period"] == period) & admissions[outcome].notna()]
    summary = rows.groupby("team_id")[outcome].agg(["size", "mean"]).reset_index()
    summary = summary.rename(columns={"mean": "observed"})
    frame = summary.merge(teams[["team_id", "arm"]], on="team_id", how="left")
    frame["observed"] = frame["observed"].astype(float)
    frame["size"] = frame["size"].astype(float)
    return frame[["team_id", "arm", "size", "observed"]]


def cluster_size(frame: pd.DataFrame, ax: Axes | None = None, *,
                 ylabel: str = "proportion admitted") -> Axes:
    """Cluster means against cluster size by arm, with both averages of each arm.

    Parameters
    ----------
    frame
        One row per cluster with ``arm``, ``size`` and ``observed`` (the cluster mean),
        e.g. :func:`cluster_size_frame` or ``crtstats.models.estimands(...).clusters``.
    ax
        Axes to draw on; a new figure when None.
    ylabel
        The label of the vertical axis.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    SchemaValidationError
        If a column is missing.
    ModelSpecificationError
        If the frame has no rows.

    Notes
    -----
    Each arm has a dashed line at the mean of its cluster means (the cluster-average)
    and a solid line at their size-weighted mean (the participant-average). If the
    points slope with size differently in the two arms, cluster size is informative and
    the two estimands differ; with few clusters a slope is hard to tell from noise.

    Examples
    --------
    >>> import crtstats
    >>> from crtstats.plots import cluster_size, cluster_size_frame
    >>> trial = crtstats.datasets.load_example()
    >>> ax = cluster_size(cluster_size_frame(trial.admissions, trial.teams))
    >>> ax.get_xlabel()
    'cluster size (service users)'

    R: ``ggplot(d, aes(size, observed, colour = arm)) + geom_point()``.
    """
    require_columns(frame, "cluster sizes", ("arm", "size", "observed"))
    if frame.empty:
        raise ModelSpecificationError("cluster_size: the frame has no clusters to draw.")
    ax = _axes(ax)
    arms = [a for a in ARMS if a in set(frame["arm"].astype(str))] or sorted(
        set(frame["arm"].astype(str)))
    palette = dict(ARM_COLOURS)
    for arm in arms:
        rows = frame[frame["arm"].astype(str) == arm]
        colour = palette.get(arm, "grey")
        size, obs = rows["size"].to_numpy(float), rows["observed"].to_numpy(float)
        ax.scatter(size, obs, color=colour, label=arm, s=28, alpha=0.85)
        ax.axhline(float(np.mean(obs)), color=colour, linestyle="--", linewidth=1)
        ax.axhline(float(np.average(obs, weights=size)), color=colour, linestyle="-",
                   linewidth=1)
    handles, labels = ax.get_legend_handles_labels()
    handles += [Line2D([], [], color="black", linestyle="--", linewidth=1),
                Line2D([], [], color="black", linestyle="-", linewidth=1)]
    labels += ["cluster-average", "participant-average"]
    ax.legend(handles, labels, frameon=False, fontsize="small")
    ax.set_xlabel("cluster size (service users)")
    ax.set_ylabel(ylabel)
    return ax

"""Team mean questionnaire scores by arm and wave."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from scipy import stats

from crtstats.exceptions import InvalidParameterError
from crtstats.plots._figures import ARM_COLOURS, _axes
from crtstats.schema import ARMS
from crtstats.tables import (
    instrument_title,
    join_arm,
    questionnaire_waves,
    require_columns,
    total_range,
)

__all__ = ["questionnaire_means", "team_means"]

#: Horizontal offset of each arm from its wave's tick, and the half-width of the
#: jitter of the team points around it (in wave units).
_ARM_OFFSET, _JITTER = 0.2, 0.07
#: Seed of the jitter: fixed, so the same data always give the same figure.
_JITTER_SEED = 20140301


def team_means(scores: pd.DataFrame, teams: pd.DataFrame, *,
               table: str = "user_questionnaires") -> pd.DataFrame:
    """The mean total of each team at each wave (scored respondents only).

    Returns a frame ``team_id, arm, wave, mean, n`` (``n`` the respondents with a
    total), one row per team and wave with at least one total, waves in time order.
    """
    require_columns(scores, "scores", ("team_id", "wave", "total"))
    known = questionnaire_waves(table)
    unknown = sorted(set(scores["wave"].dropna().astype(str)) - set(known))
    if unknown:
        raise InvalidParameterError(f"wave must be one of {list(known)}; got {unknown}.")
    frame = pd.DataFrame({
        "team_id": scores["team_id"].astype(str).to_numpy(),
        "arm": join_arm(scores, teams, "scores").to_numpy(dtype=object),
        "wave": scores["wave"].astype(str).to_numpy(dtype=object),
        "total": pd.to_numeric(scores["total"]).astype(float).to_numpy(),
    }).dropna(subset=["total"])
    out = frame.groupby(["team_id", "arm", "wave"], as_index=False).agg(
        mean=("total", "mean"), n=("total", "size"))
    out["order"] = out["wave"].map({w: i for i, w in enumerate(known)})
    return out.sort_values(["order", "arm", "team_id"]).drop(columns="order").reset_index(
        drop=True)


def _arm_summary(means: pd.Series, level: float = 0.95) -> tuple[float, float, float]:
    """Mean over teams and its t interval on ``k - 1`` df (NaN limits for one team)."""
    k = len(means)
    centre = float(means.mean())
    if k < 2:
        return centre, np.nan, np.nan
    half = float(stats.t.ppf(0.5 + level / 2, k - 1) * means.std(ddof=1) / np.sqrt(k))
    return centre, centre - half, centre + half


def questionnaire_means(
    scores: pd.DataFrame, teams: pd.DataFrame, *, instrument: str = "csq8",
    scoring: str | None = None, table: str = "user_questionnaires", ax: Axes | None = None,
) -> Axes:
    """Team mean questionnaire totals by arm and wave, with the arm means and 95% CIs.

    Parameters
    ----------
    scores
        :func:`crtstats.scales.score_questionnaire` output (``team_id``, ``wave``,
        ``total``; rows without a total are left out).
    teams
        The teams table (``team_id``, ``arm``).
    instrument
        The instrument key the totals were scored with: its title names the axis and
        its total range (under ``scoring``) sets the y limits.
    scoring
        The scoring used (``None``: the key's first).
    table
        The questionnaire table the scores come from, whose schema lists the waves.
    ax
        Axes to draw on; a new figure's axes when ``None``.

    Returns
    -------
    matplotlib.axes.Axes
        At each wave, one point per team (its mean total), coloured by arm and
        jittered sideways within the arm's place; a thin line joins a team's points
        at its two waves; a large marker with error bars gives the arm mean over
        teams and its 95% CI. The y axis spans the instrument's total range.

    Raises
    ------
    SchemaValidationError
        If a needed column is absent.
    InvalidParameterError
        If a wave, arm or team is unknown, the instrument has no such scoring, or
        ``ax`` is not an Axes.

    Notes
    -----
    Team ``j``'s mean at a wave is :math:`\\bar y_j = n_j^{-1} \\sum_i y_{ij}` over its
    :math:`n_j` scored respondents. The arm mean is the unweighted mean of the
    :math:`k` team means, with interval
    :math:`\\bar y \\pm t_{k-1, 0.975}\\, s / \\sqrt{k}` (:math:`s` the SD of the team
    means): the cluster-level summary, each team weighted equally. The jitter is
    drawn from a fixed seed, so the figure is reproducible.

    References
    ----------
    Hayes RJ, Moulton LH. Cluster Randomised Trials, 2nd ed. CRC Press; 2017
    (chapter 9: analysis based on cluster-level summaries).

    Examples
    --------
    >>> import pandas as pd
    >>> teams = pd.DataFrame({"team_id": ["A", "B"], "arm": ["control", "intervention"]})
    >>> scores = pd.DataFrame({"team_id": ["A", "A", "B", "B"],
    ...                        "wave": ["baseline", "follow_up"] * 2,
    ...                        "total": [20.0, 22.0, 21.0, 25.0]})
    >>> ax = questionnaire_means(scores, teams)
    >>> [t.get_text() for t in ax.get_xticklabels()]
    ['baseline', 'follow-up']
    >>> [float(y) for y in ax.get_ylim()]  # the CSQ-8 total range, 8 to 32, padded
    [7.28, 32.72]

    In R: ``ggplot(team_means, aes(wave, mean, colour = arm)) +
    geom_jitter(width = 0.07) + geom_line(aes(group = team_id)) +
    stat_summary(fun.data = mean_cl_normal)``.
    """
    low, high = total_range(instrument, scoring)
    title = instrument_title(instrument, scoring)
    means = team_means(scores, teams, table=table)
    ax = _axes(ax)
    known = questionnaire_waves(table)
    ids = sorted(means["team_id"].unique())
    shift = dict(zip(ids, np.random.default_rng(_JITTER_SEED).uniform(
        -_JITTER, _JITTER, len(ids)), strict=True))
    offset = dict(zip(ARMS, np.linspace(-_ARM_OFFSET, _ARM_OFFSET, len(ARMS)), strict=True))
    means["x"] = [known.index(w) + offset[a] + shift[t]
                  for w, a, t in zip(means["wave"], means["arm"], means["team_id"], strict=True)]
    for (_, arm), part in means.groupby(["team_id", "arm"], sort=True):
        colour = ARM_COLOURS[str(arm)]
        if len(part) > 1:
            ax.plot(part["x"], part["mean"], color=colour, alpha=0.35, linewidth=0.8,
                    zorder=1)
        ax.scatter(part["x"], part["mean"], color=colour, s=14, alpha=0.7, linewidths=0,
                   zorder=2)
    for (wave, arm), part in means.groupby(["wave", "arm"], sort=True):
        centre, lo, hi = _arm_summary(part["mean"])
        x = known.index(str(wave)) + offset[str(arm)]
        yerr = None if np.isnan(lo) else [[centre - lo], [hi - centre]]
        ax.errorbar([x], [centre], yerr=yerr, fmt="D", markersize=7, capsize=4,
                    color=ARM_COLOURS[str(arm)], markeredgecolor="black",
                    ecolor="black", elinewidth=1.4, zorder=3)
    present = [w for w in known if w in set(means["wave"])]
    ax.set_xticks([known.index(w) for w in present], [w.replace("_", "-") for w in present])
    ax.set_xlim(min(known.index(w) for w in present) - 0.5,
                max(known.index(w) for w in present) + 0.5)
    pad = 0.03 * (high - low)
    ax.set_ylim(low - pad, high + pad)
    ax.set_xlabel("Wave")
    ax.set_ylabel(f"{title} total, team mean")
    handles = [Line2D([], [], marker="o", linestyle="", color=ARM_COLOURS[a], label=a)
               for a in ARMS]
    handles.append(Line2D([], [], marker="D", color="black", markerfacecolor="white",
                          label="arm mean (95% CI)"))
    ax.legend(handles=handles, title="Arm", loc="best", fontsize="small", framealpha=0.9)
    return ax

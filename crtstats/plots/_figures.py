"""Trial figures drawn with seaborn and matplotlib; each returns its axes.

No function here saves or shows a figure. Without ``ax`` a new
:class:`matplotlib.figure.Figure` is made (not registered with pyplot, so no global
state is touched); its axes are returned and ``ax.figure`` is the figure.
"""

from __future__ import annotations

import textwrap
from typing import Any

import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy import stats

from crtstats.analysis import RATIO_SCALES
from crtstats.exceptions import InvalidParameterError, ModelSpecificationError
from crtstats.scales import available_scales, load_scale
from crtstats.schema import ARMS, REVIEWS
from crtstats.tables import (
    collect_effects,
    domain_keys,
    join_arm,
    present_reviews,
    require_columns,
    scale_labels,
)

__all__ = ["caterpillar", "domain_profile", "forest", "forest_label", "trajectories"]

#: Row labels longer than this many characters are wrapped onto further lines.
_LABEL_WIDTH = 40

#: Arm colours (seaborn's colour-blind palette), fixed so every figure agrees.
ARM_COLOURS = dict(zip(ARMS, sns.color_palette("colorblind", 2).as_hex(), strict=True))


def _axes(ax: Axes | None, size: tuple[float, float] = (6.4, 4.8)) -> Axes:
    if ax is not None:
        if not isinstance(ax, Axes):
            raise InvalidParameterError(
                f"ax must be a matplotlib Axes or None; got {type(ax).__name__}."
            )
        return ax
    figure = Figure(figsize=size, layout="constrained")
    return figure.add_subplot()


def _scored(scores: pd.DataFrame, teams: pd.DataFrame, value: str) -> pd.DataFrame:
    require_columns(scores, "scores", ("team_id", "review", value))
    reviews = present_reviews(scores["review"].tolist())
    frame = pd.DataFrame({
        "team_id": scores["team_id"].astype(str).to_numpy(),
        "arm": join_arm(scores, teams, "scores").to_numpy(dtype=object),
        "review": scores["review"].astype(str).to_numpy(dtype=object),
        value: pd.to_numeric(scores[value]).astype(float).to_numpy(),
    })
    frame["position"] = frame["review"].map({r: float(i) for i, r in enumerate(reviews)})
    return frame


#: Fill colours of the fidelity bands, lowest band first (grey, light and lighter).
_BAND_SHADES = ("0.80", "0.90", "0.97", "1.0")


def _band_limits(scale: str, value: str) -> list[tuple[str, float, float]]:
    """``(name, low, high)`` of each band of ``scale`` on the axis of ``value``: the key's
    total bounds for ``total``, divided by the number of items for ``mean_item``."""
    if value not in ("total", "mean_item") or scale not in available_scales():
        return []
    key = load_scale(scale)
    per = 1.0 if value == "total" else float(key.n_items)
    lows = [low / per for _, low in key.bands] + [key.total_max / per]
    return [(name, lows[i], lows[i + 1]) for i, (name, _) in enumerate(key.bands)]


def _draw_bands(ax: Axes, bands: list[tuple[str, float, float]], values: pd.Series) -> None:
    """Shade each band across the axes and name it at the right; the y range shows every
    boundary between bands and all the data."""
    inner = [b[1] for b in bands[1:]]
    data = values.dropna().astype(float)
    pad = 0.04 * (max([*data, *inner]) - min([*data, *inner]) or 1.0)
    low = min([*data, *inner]) - pad
    high = max([*data, *inner]) + pad
    for (name, start, stop), shade in zip(bands, _BAND_SHADES, strict=False):
        if stop <= low or start >= high:
            continue
        ax.axhspan(max(start, low), min(stop, high), color=shade, zorder=0, linewidth=0)
        ax.text(1.0, (max(start, low) + min(stop, high)) / 2.0, f" {name}",
                transform=ax.get_yaxis_transform(), ha="left", va="center",
                fontsize="small", color="0.3")
    for edge in inner:
        ax.axhline(edge, color="0.55", linewidth=0.6, zorder=0.5, gid="fidelity-band")
    ax.set_ylim(low, high)


def trajectories(
    scores: pd.DataFrame, teams: pd.DataFrame, ax: Axes | None = None, *, value: str = "total",
    scale: str = "core_crt_v2", bands: bool = True,
) -> Axes:
    """Team fidelity across reviews, by arm, with the arm means drawn on top.

    Parameters
    ----------
    scores
        :func:`crtstats.scales.score_fidelity` output (``team_id, review`` and
        ``value``).
    teams
        The teams table (``team_id``, ``arm``).
    ax
        Axes to draw on; a new figure's axes when ``None``.
    value
        The score column to plot (``total`` by default, or ``mean_item``...).
    scale
        The scale key whose fidelity bands are shaded (``core_crt_v2``: low below
        117, moderate 117-155, high from 156; read from the key, never restated).
    bands
        Whether to shade the bands (for ``total`` and ``mean_item`` only).

    Returns
    -------
    matplotlib.axes.Axes
        Thin lines, one per team, coloured by arm; thick lines with markers, the arm
        means over teams with a value at each review; the scale's bands as grey
        shading named at the right, the y range showing each band boundary.

    Raises
    ------
    SchemaValidationError
        If a needed column is absent.
    InvalidParameterError
        If a review, arm or team is unknown, or ``ax`` is not an Axes.

    Notes
    -----
    A missing score (e.g. a review with a missing item) breaks that team's line; the
    arm mean at a review is :math:`\\bar y_{a,r} = n_{a,r}^{-1} \\sum_j y_{j,r}` over
    the :math:`n_{a,r}` teams of arm ``a`` with a score.

    References
    ----------
    Waskom ML. seaborn: statistical data visualization. JOSS 2021;6:3021.

    Examples
    --------
    >>> import pandas as pd
    >>> teams = pd.DataFrame({"team_id": ["A", "B"], "arm": ["control", "intervention"]})
    >>> scores = pd.DataFrame({"team_id": ["A", "A", "B", "B"],
    ...                        "review": ["baseline", "12m"] * 2,
    ...                        "total": [110.0, 115.0, 112.0, 130.0]})
    >>> ax = trajectories(scores, teams)
    >>> [t.get_text() for t in ax.get_xticklabels()]
    ['baseline', '12m']

    In R: ``ggplot(scores, aes(review, total, group = team_id, colour = arm)) +
    geom_line(alpha = 0.3) + stat_summary(aes(group = arm), fun = mean, geom = "line")``.
    """
    frame = _scored(scores, teams, value)
    ax = _axes(ax)
    for (arm, _team), part in frame.groupby(["arm", "team_id"], sort=True):
        part = part.sort_values("position")
        ax.plot(part["position"], part[value], color=ARM_COLOURS[str(arm)], alpha=0.3,
                linewidth=0.8)
    means = frame.dropna(subset=[value]).groupby(["arm", "position"], as_index=False)[
        value
    ].mean()
    sns.lineplot(data=means, x="position", y=value, hue="arm", hue_order=list(ARMS),
                 palette=ARM_COLOURS, marker="o", linewidth=2.5, errorbar=None, ax=ax)
    reviews = present_reviews(frame["review"].tolist())
    ax.set_xticks(range(len(reviews)), reviews)
    ax.set_xlabel("Review")
    ax.set_ylabel(f"Fidelity {value.replace('_', ' ')}")
    limits = _band_limits(scale, value) if bands else []
    if limits:
        _draw_bands(ax, limits, frame[value])
    ax.legend(title="Arm (mean)", loc="lower right", framealpha=0.9)
    return ax


def domain_profile(scores: pd.DataFrame, teams: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Domain mean item scores by arm at each review (one line per arm and review).

    Parameters
    ----------
    scores
        :func:`crtstats.scales.score_fidelity` output with ``<domain>_mean`` columns.
    teams
        The teams table (``team_id``, ``arm``).
    ax
        Axes to draw on; a new figure's axes when ``None``.

    Returns
    -------
    matplotlib.axes.Axes
        Domains along x (scale-key order and labels), the mean over teams of the
        domain mean item score on y; colour shows the arm, line style the review.

    Raises
    ------
    SchemaValidationError
        If a needed column is absent.
    InvalidParameterError
        If ``scores`` has no domain columns, or a review, arm or team is unknown.

    Notes
    -----
    Each point is :math:`n^{-1} \\sum_j \\bar x_{j,d}` over the teams of that arm with
    domain ``d`` scored at that review, :math:`\\bar x_{j,d}` being team ``j``'s mean
    item score in the domain; mean item scores keep domains of 3 and 16 items on the
    same 1-5 scale.

    References
    ----------
    Lloyd-Evans B, et al. The CORE Crisis Resolution Team fidelity scale. BMC
    Psychiatry 2016;16:1-12.

    Examples
    --------
    >>> import pandas as pd
    >>> teams = pd.DataFrame({"team_id": ["A", "B"], "arm": ["control", "intervention"]})
    >>> scores = pd.DataFrame({"team_id": ["A", "B"], "review": "baseline",
    ...                        "referrals_access_sum": [30.0, 32.0],
    ...                        "referrals_access_mean": [3.0, 3.2]})
    >>> domain_profile(scores, teams).get_xlabel()
    'Domain'

    In R: ``ggplot(long, aes(domain, mean, colour = arm, linetype = review,
    group = interaction(arm, review))) + stat_summary(fun = mean, geom = "line")``.
    """
    require_columns(scores, "scores", ("team_id", "review"))
    keys = domain_keys(scores)
    if not keys:
        raise InvalidParameterError(
            "scores has no domain columns (<domain>_sum and <domain>_mean pairs); pass "
            "the output of score_fidelity."
        )
    labels = scale_labels()
    parts = [_scored(scores, teams, f"{k}_mean").rename(columns={f"{k}_mean": "score"})
             .assign(domain=labels.domain_label(k), order=i) for i, k in enumerate(keys)]
    long = pd.concat(parts, ignore_index=True).dropna(subset=["score"])
    means = long.groupby(["arm", "review", "order", "domain"], as_index=False)["score"].mean()
    ax = _axes(ax, size=(7.5, 4.8))
    review_order = [r for r in REVIEWS if r in set(means["review"])]
    sns.lineplot(data=means, x="order", y="score", hue="arm", hue_order=list(ARMS),
                 style="review", style_order=review_order, palette=ARM_COLOURS,
                 markers=True, errorbar=None, ax=ax)
    ax.set_xticks(range(len(keys)), [labels.domain_label(k) for k in keys], rotation=15,
                  ha="right")
    ax.set_xlabel("Domain")
    ax.set_ylabel("Mean item score")
    # outside the plot area, so no line or point is hidden behind it
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize="small")
    return ax


def _forest_frame(effects: Any) -> pd.DataFrame:
    items = effects if isinstance(effects, list | tuple) else [effects]
    frame = collect_effects(*items)
    ratio = frame["scale"].astype(str).isin(RATIO_SCALES)
    if ratio.any() and not ratio.all():
        raise InvalidParameterError(
            f"forest draws one kind of scale per axes; these rows mix ratio and difference "
            f"scales {sorted(set(frame['scale'].astype(str)))}: plot them on separate axes."
        )
    return frame


def _plain_log_axis(ax: Axes) -> None:
    """Log x axis with ticks written as plain numbers (0.5, 1, 2), not powers of ten."""
    ax.set_xscale("log")
    plain = mticker.FuncFormatter(lambda value, _pos: f"{value:g}")
    ax.xaxis.set_major_formatter(plain)
    low, high = ax.get_xlim()
    narrow = high / low < 20  # label the 2..9 ticks only when there are few decades
    ax.xaxis.set_minor_formatter(plain if narrow else mticker.NullFormatter())


def forest_label(analysis: str, estimand: str, outcome: str | None = None) -> str:
    """A forest row's label: ``[outcome: ]analysis (estimand)``, term names made
    readable, wrapped at 40 characters."""
    from crtstats.plots._forest import readable_terms

    text = f"{analysis} ({readable_terms(estimand)})"
    return textwrap.fill(f"{outcome}: {text}" if outcome is not None else text,
                         width=_LABEL_WIDTH)


def forest(effects: Any, ax: Axes | None = None, *, show_outcome: bool = True) -> Axes:
    """Forest plot of effects: one row per effect with its confidence interval.

    Parameters
    ----------
    effects
        An effects frame with the columns of :data:`crtstats.analysis.EFFECT_COLUMNS`,
        an :class:`crtstats.analysis.AnalysisResult`, or a list of them.
    ax
        Axes to draw on; a new figure's axes when ``None``.
    show_outcome
        Whether row labels start with the outcome (leave it out when the axes show
        one outcome, as :func:`crtstats.plots.forest_panels` does).

    Returns
    -------
    matplotlib.axes.Axes
        Estimates as points with horizontal interval bars, top to bottom in the
        order given, labelled "outcome: analysis (estimand)" (wrapped at 40
        characters; model term names such as ``arm[T.intervention]`` made readable),
        primary rows in bold; a reference line at 0 for differences, or at 1 on a log
        axis for odds and rate ratios. Many outcomes or scales are clearer as
        :func:`crtstats.plots.forest_panels`.

    Raises
    ------
    SchemaValidationError
        If a frame lacks an effects column.
    InvalidParameterError
        If rows mix ratio and difference scales, or fail the checks of
        :func:`crtstats.tables.effects`.

    Notes
    -----
    The intervals drawn are the frame's ``conf_low`` and ``conf_high``, unchanged.

    References
    ----------
    Lewis S, Clarke M. Forest plots: trying to see the wood and the trees. BMJ
    2001;322:1479-80.

    Examples
    --------
    >>> import pandas as pd
    >>> from crtstats.analysis import EFFECT_COLUMNS
    >>> row = dict(zip(EFFECT_COLUMNS, ["admitted", "GLMM", "primary", "arm",
    ...     "odds ratio", 0.7, 0.5, 0.98, 0.04, 23, "between-within", "Laplace",
    ...     float("nan"), float("nan"), float("nan"), 25, 1388]))
    >>> forest(pd.DataFrame([row])).get_xscale()
    'log'

    In R: ``forestplot::forestplot()`` or ``ggplot() + geom_pointrange()``.
    """
    frame = _forest_frame(effects)
    labels = [forest_label(str(a), str(e), str(o) if show_outcome else None) for o, a, e in
              zip(frame["outcome"], frame["analysis"], frame["estimand"], strict=True)]
    lines = sum(label.count("\n") + 1 for label in labels)
    ax = _axes(ax, size=(7.0, 1.2 + 0.3 * lines + 0.2 * len(frame)))
    y = np.arange(len(frame))[::-1].astype(float)
    est = frame["estimate"].astype(float).to_numpy()
    low = frame["conf_low"].astype(float).to_numpy()
    high = frame["conf_high"].astype(float).to_numpy()
    ratio = bool(frame["scale"].astype(str).isin(RATIO_SCALES).all())
    ax.axvline(1.0 if ratio else 0.0, color="0.5", linestyle="--", linewidth=1)
    ax.errorbar(est, y, xerr=np.vstack([est - low, high - est]), fmt="o", color="0.15",
                ecolor="0.15", capsize=3)
    ax.set_yticks(y, labels)
    for tick, role in zip(ax.get_yticklabels(), frame["role"].astype(str), strict=True):
        tick.set_fontweight("bold" if role == "primary" else "normal")
    ax.set_ylim(-0.6, len(frame) - 0.4)
    if ratio:
        _plain_log_axis(ax)
    scales = sorted(set(frame["scale"].astype(str)))
    log = ", log scale" if ratio else ""
    ax.set_xlabel(f"{' / '.join(scales).capitalize()} (95% CI{log})")
    return ax


def caterpillar(result: Any, ax: Axes | None = None, *, level: float = 0.95) -> Axes:
    """Caterpillar plot of predicted team effects with normal intervals, sorted.

    Parameters
    ----------
    result
        A :class:`crtstats.CRTResult` from a mixed model: its ``random_effects`` frame
        has ``cluster, estimate, std_error``.
    ax
        Axes to draw on; a new figure's axes when ``None``.
    level
        Coverage of the intervals.

    Returns
    -------
    matplotlib.axes.Axes
        One row per cluster, ordered by predicted effect, with
        ``estimate +/- z * std_error`` and a line at 0.

    Raises
    ------
    ModelSpecificationError
        If the result has no random effects (not a mixed model).
    InvalidParameterError
        If ``level`` is not strictly between 0 and 1.

    Notes
    -----
    Intervals are :math:`\\hat u_j \\pm z_{(1+\\text{level})/2} \\, \\text{se}(\\hat u_j)`
    with the conditional standard errors of the predictions (as lme4's
    ``ranef(condVar = TRUE)``); they describe the predictions, not a test per team.

    References
    ----------
    Bates D, Maechler M, Bolker B, Walker S. Fitting linear mixed-effects models using
    lme4. J Stat Softw 2015;67(1).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from crtstats import CRTResult
    >>> re = pd.DataFrame({"cluster": ["T1", "T2"], "estimate": [-1.0, 1.0],
    ...                    "std_error": [0.5, 0.5]})
    >>> fit = CRTResult(model="lmm", formula="y ~ 1", param_names=("Intercept",),
    ...                 param_values=[0.0], cov_values=[[1.0]], df_values=[10.0],
    ...                 df_method="kenward-roger", cov_type="REML", nobs=20, n_clusters=2,
    ...                 random_effects_frame=re)
    >>> [t.get_text() for t in caterpillar(fit).get_yticklabels()]
    ['T1', 'T2']

    In R: ``lattice::dotplot(ranef(fit, condVar = TRUE))``.
    """
    if not 0.0 < level < 1.0:
        raise InvalidParameterError(f"level must be strictly between 0 and 1; got {level!r}.")
    effects = getattr(result, "random_effects", None)
    if effects is None:
        raise ModelSpecificationError(
            f"caterpillar needs a mixed-model result with random effects; "
            f"{result!r} has none."
        )
    require_columns(effects, "random_effects", ("cluster", "estimate", "std_error"))
    frame = effects.sort_values("estimate", kind="stable").reset_index(drop=True)
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    est = frame["estimate"].astype(float).to_numpy()
    half = z * frame["std_error"].astype(float).to_numpy()
    ax = _axes(ax, size=(5.0, 1.0 + 0.22 * len(frame)))
    y = np.arange(len(frame), dtype=float)
    ax.axvline(0.0, color="0.5", linestyle="--", linewidth=1)
    ax.errorbar(est, y, xerr=half, fmt="o", color="0.15", ecolor="0.4", markersize=4)
    ax.set_yticks(y, frame["cluster"].astype(str).tolist())
    ax.set_ylim(-0.6, len(frame) - 0.4)
    ax.set_xlabel(f"Predicted cluster effect ({level:.0%} interval)")
    ax.set_ylabel("Cluster")
    return ax

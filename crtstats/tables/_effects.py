"""The effects table: one row per outcome, analysis and estimand."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from crtstats.analysis import EFFECT_COLUMNS, RATIO_SCALES, AnalysisResult
from crtstats.exceptions import InvalidParameterError
from crtstats.tables._common import require_columns
from crtstats.tables._table import Column, Table

__all__ = ["collect_effects", "effects"]


def _check_rows(frame: pd.DataFrame) -> None:
    """Refuse rows whose numbers cannot be what the columns say."""
    est, low, high = (frame[c].astype(float) for c in ("estimate", "conf_low", "conf_high"))
    ratio = frame["scale"].astype(str).isin(RATIO_SCALES)
    bad_ratio = ratio & ((est <= 0) | (low <= 0) | (high <= 0))
    if bad_ratio.any():
        i = int(np.flatnonzero(bad_ratio.to_numpy())[0])
        raise InvalidParameterError(
            f"effects row {i} ({frame['outcome'].iloc[i]}, {frame['analysis'].iloc[i]}) is on "
            f"the {frame['scale'].iloc[i]!r} scale but has a non-positive estimate or limit "
            f"({est.iloc[i]!r}, {low.iloc[i]!r}, {high.iloc[i]!r}); ratio rows must be "
            "exponentiated before tabulating."
        )
    outside = (low > est) | (est > high)
    if outside.any():
        i = int(np.flatnonzero(outside.to_numpy())[0])
        raise InvalidParameterError(
            f"effects row {i} ({frame['outcome'].iloc[i]}, {frame['analysis'].iloc[i]}): the "
            f"estimate {est.iloc[i]!r} lies outside its interval ({low.iloc[i]!r}, "
            f"{high.iloc[i]!r}); check the columns are on the same scale."
        )
    pvalue = frame["pvalue"].astype(float)
    if ((pvalue < 0) | (pvalue > 1)).any():
        bad = pvalue[(pvalue < 0) | (pvalue > 1)].tolist()
        raise InvalidParameterError(f"effects pvalue must lie in [0, 1]; got {bad}.")


def collect_effects(*results: pd.DataFrame | AnalysisResult) -> pd.DataFrame:
    """Concatenate effects frames and :class:`AnalysisResult` objects, checked.

    Returns a frame with exactly :data:`crtstats.analysis.EFFECT_COLUMNS`, rows in the
    order given. Extra columns are refused rather than dropped.
    """
    if not results:
        raise InvalidParameterError(
            "effects() needs at least one effects frame or AnalysisResult; got none."
        )
    frames = []
    for k, item in enumerate(results):
        frame = item.effects if isinstance(item, AnalysisResult) else item
        require_columns(frame, f"effects #{k + 1}", EFFECT_COLUMNS)
        extra = [c for c in frame.columns if c not in EFFECT_COLUMNS]
        if extra:
            raise InvalidParameterError(
                f"effects #{k + 1} has column(s) {extra} beyond EFFECT_COLUMNS; select "
                "EFFECT_COLUMNS before tabulating."
            )
        frames.append(frame[list(EFFECT_COLUMNS)])
    combined = pd.concat(frames, ignore_index=True)
    _check_rows(combined)
    return combined


def _grouped(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows grouped by outcome in order of first appearance, order kept within each."""
    outcome = frame["outcome"].astype(str)
    first = {o: i for i, o in reversed(list(enumerate(outcome)))}
    order = sorted(range(len(frame)), key=lambda i: (first[outcome.iloc[i]], i))
    return frame.iloc[order].reset_index(drop=True)


def effects(*results: Any, decimals: int = 2, p_decimals: int = 3) -> Table:
    """The effects table: estimate (95% CI), p, df and method, ICC (95% CI), N.

    Parameters
    ----------
    *results
        One or more effects frames with exactly the columns of
        :data:`crtstats.analysis.EFFECT_COLUMNS`, and/or
        :class:`crtstats.analysis.AnalysisResult` objects (their ``effects``).
        Odds and rate ratios must already be exponentiated, as the contract says.
    decimals
        Decimal places of estimates, limits, df and ICC.
    p_decimals
        Decimal places of p-values (below ``10**-p_decimals``: ``< 0.001``).

    Returns
    -------
    Table
        The concatenated effects, grouped by outcome (in order of first appearance,
        order kept within an outcome), shown as analysis, role, estimand, scale,
        estimate (95% CI), p, df, df method, ICC (95% CI), clusters, observations.

    Raises
    ------
    SchemaValidationError
        If a frame lacks an effects column.
    InvalidParameterError
        If nothing is given, a frame has extra columns, a ratio row is not positive
        (not exponentiated), an estimate lies outside its interval, or a p-value is
        outside [0, 1].

    Notes
    -----
    Intervals are those of the analyses (e.g. t with Kenward-Roger df); the table
    only formats them. ``df`` is ``inf`` for z-based inference.

    References
    ----------
    Campbell MK, et al. Consort 2010 statement: extension to cluster randomised
    trials. BMJ 2012;345:e5661 (item 17: estimate, precision and ICC per outcome).

    Examples
    --------
    >>> import pandas as pd
    >>> from crtstats.analysis import EFFECT_COLUMNS
    >>> row = dict(zip(EFFECT_COLUMNS, ["fidelity total", "LMM", "primary",
    ...     "arm effect at 12m", "difference", 9.83, 2.1, 17.56, 0.0153, 21.7,
    ...     "kenward-roger", "REML", 0.41, 0.12, 0.68, 25, 74]))
    >>> effects(pd.DataFrame([row])).formatted().loc[0, "Estimate (95% CI)"]
    '9.83 (2.10 to 17.56)'

    In R: ``broom.mixed::tidy(fit, conf.int = TRUE)`` rows bound and passed to
    ``gt``/``flextable``.
    """
    frame = _grouped(collect_effects(*results))
    columns = [
        Column("Analysis", ("analysis",), "text"),
        Column("Role", ("role",), "text"),
        Column("Estimand", ("estimand",), "text"),
        Column("Scale", ("scale",), "text"),
        Column("Estimate (95% CI)", ("estimate", "conf_low", "conf_high"), "ci",
               decimals=decimals),
        Column("p", ("pvalue",), "pvalue", decimals=p_decimals),
        Column("df", ("df",), "number", decimals=1),
        Column("df method", ("df_method",), "text"),
        Column("ICC (95% CI)", ("icc", "icc_low", "icc_high"), "ci", decimals=decimals),
        Column("Clusters", ("n_clusters",), "integer"),
        Column("Observations", ("nobs",), "integer"),
    ]
    notes = ["CI: confidence interval; ICC: intra-cluster correlation."]
    if frame["scale"].astype(str).isin(RATIO_SCALES).any():
        notes.append("Odds and rate ratios are exponentiated (no effect = 1).")
    if np.isinf(frame["df"].astype(float)).any():
        notes.append("df inf: inference from the normal distribution (z).")
    return Table(frame, columns, title="Estimated effects", row_group="outcome",
                 footnotes=notes)

"""The effects table: one row per outcome, analysis and estimand."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from crtstats.analysis import (
    EFFECT_COLUMNS,
    OPTIONAL_EFFECT_COLUMNS,
    RATIO_SCALES,
    ROLES,
    AnalysisResult,
)
from crtstats.exceptions import InvalidParameterError
from crtstats.tables._common import outcome_label, require_columns
from crtstats.tables._table import Column, Table

__all__ = ["BOUNDARY_MARK", "OUTCOME_ROLES", "SEPARATE_ICC_MARK", "collect_effects",
           "effects"]

#: Marks the analysis of a boundary fit (zero between-team variance); a footnote explains.
BOUNDARY_MARK = "\u2020"
#: Marks an ICC that does not come from the row's own model.
SEPARATE_ICC_MARK = "\u2021"
#: The values of the optional ``outcome_role`` column: the plan's primary outcome, and
#: every other outcome.
OUTCOME_ROLES = ("primary", "secondary")
#: An optional column of effects frames (set by a plan that names its primary outcome).
_OUTCOME_ROLE = "outcome_role"


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


def _check_roles(frame: pd.DataFrame) -> None:
    """Each row's role is known, and each outcome has at most one primary row."""
    roles = frame["role"].astype(str)
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise InvalidParameterError(f"effects role must be one of {list(ROLES)}; got {unknown}.")
    primary = frame[roles == "primary"]
    counts = primary.groupby(primary["outcome"].astype(str), sort=False).size()
    several = counts[counts > 1]
    if len(several):
        outcome = str(several.index[0])
        rows = primary[primary["outcome"].astype(str) == outcome]
        found = "; ".join(f"{a} ({e})" for a, e in zip(rows["analysis"], rows["estimand"],
                                                      strict=True))
        raise InvalidParameterError(
            f"outcome {outcome!r} has {int(several.iloc[0])} rows labelled primary ({found}); "
            "pre-specify one primary analysis and estimand per outcome and label the "
            "others \"secondary\" or \"sensitivity\"."
        )


def _check_outcome_roles(frame: pd.DataFrame) -> None:
    """Each stated outcome role is known, and an outcome has one role in all its rows."""
    stated = frame[_OUTCOME_ROLE].map(_text)
    unknown = sorted(set(stated[stated != ""]) - set(OUTCOME_ROLES))
    if unknown:
        raise InvalidParameterError(
            f"effects outcome_role must be one of {list(OUTCOME_ROLES)} (or missing); got "
            f"{unknown}.")
    given = frame.loc[stated != ""].assign(role_=stated[stated != ""])
    per_outcome = given.groupby(given["outcome"].astype(str), sort=False)["role_"].nunique()
    mixed = per_outcome[per_outcome > 1]
    if len(mixed):
        raise InvalidParameterError(
            f"outcome {mixed.index[0]!r} is labelled both primary and secondary in "
            "outcome_role; an outcome has one role in the plan: give all its rows the same.")


def collect_effects(*results: pd.DataFrame | AnalysisResult) -> pd.DataFrame:
    """Concatenate effects frames and :class:`AnalysisResult` objects, checked.

    Returns a frame with the columns of :data:`crtstats.analysis.EFFECT_COLUMNS`, of
    :data:`crtstats.analysis.OPTIONAL_EFFECT_COLUMNS` and ``outcome_role`` (those a
    frame leaves out are filled: ``boundary`` False, the others missing), rows in the
    order given. Other extra columns are refused rather than dropped.
    """
    if not results:
        raise InvalidParameterError(
            "effects() needs at least one effects frame or AnalysisResult; got none."
        )
    optional = [c for c in (*OPTIONAL_EFFECT_COLUMNS, _OUTCOME_ROLE) if c not in EFFECT_COLUMNS]
    allowed = list(dict.fromkeys([*EFFECT_COLUMNS, *optional]))
    frames = []
    for k, item in enumerate(results):
        frame = item.effects if isinstance(item, AnalysisResult) else item
        require_columns(frame, f"effects #{k + 1}",
                        [c for c in EFFECT_COLUMNS if c not in OPTIONAL_EFFECT_COLUMNS])
        extra = [c for c in frame.columns if c not in allowed]
        if extra:
            raise InvalidParameterError(
                f"effects #{k + 1} has column(s) {extra} beyond EFFECT_COLUMNS and "
                "OPTIONAL_EFFECT_COLUMNS; select those before tabulating."
            )
        frames.append(frame.reindex(columns=allowed))
    combined = pd.concat(frames, ignore_index=True)
    combined["boundary"] = [False if _text(v) == "" else bool(v) for v in combined["boundary"]]
    combined["icc_source"] = [_text(v) for v in combined["icc_source"]]
    _check_rows(combined)
    _check_roles(combined)
    _check_outcome_roles(combined)
    return combined


def _grouped(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows grouped by outcome in order of first appearance, order kept within each."""
    outcome = frame["outcome"].astype(str)
    first = {o: i for i, o in reversed(list(enumerate(outcome)))}
    order = sorted(range(len(frame)), key=lambda i: (first[outcome.iloc[i]], i))
    return frame.iloc[order].reset_index(drop=True)


def _text(value: Any) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def _measure(row: Mapping[str, Any]) -> str:
    """The summary measure, with its conditioning and population when stated."""
    measure = _text(row.get("measure")) or _text(row["scale"])
    qualifiers = [q for q in (_text(row.get("conditioning")), _text(row.get("population")))
                  if q]
    return f"{measure} ({', '.join(qualifiers)})" if qualifiers else measure


def _outcome_roles(frame: pd.DataFrame) -> dict[str, str]:
    """The stated ``outcome_role`` of each outcome (checked to be one per outcome)."""
    stated = frame[_OUTCOME_ROLE].map(_text)
    return {str(o): r for o, r in zip(frame["outcome"], stated, strict=True) if r}


def _shown(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Display columns (boundary marker, measure, ICC limit truncated at 0) and their notes."""
    out = frame.copy()
    records = [{str(k): v for k, v in r.items()} for r in out.to_dict(orient="records")]
    out["boundary_mark"] = [BOUNDARY_MARK if r["boundary"] else "" for r in records]
    out["icc_mark"] = [SEPARATE_ICC_MARK if r["icc_source"] == "separate" else ""
                       for r in records]
    out["measure_shown"] = [_measure(r) for r in records]
    roles = _outcome_roles(out)
    out["outcome_shown"] = [
        f"{outcome_label(str(r['outcome']))} ({roles[str(r['outcome'])]} outcome)"
        if roles.get(str(r["outcome"])) else outcome_label(str(r["outcome"]))
        for r in records]
    low = out["icc_low"].astype(float)
    out["icc_low_shown"] = low.clip(lower=0.0)
    notes = []
    if out["boundary"].any():
        notes.append(
            f"{BOUNDARY_MARK} Boundary fit: the model estimated the between-team variance "
            "as zero, so it reduces to one without clustering and its ICC is 0; the "
            "cluster-level analysis does not depend on this variance."
        )
    if (out["icc_mark"] != "").any():
        notes.append(
            f"{SEPARATE_ICC_MARK} The row's model has no ICC of its own: the ICC of the "
            "outcome estimated separately (as the analysis states, e.g. one-way ANOVA)."
        )
    if (low < 0).any():
        notes.append("Lower ICC limits below 0 are shown as 0 (an ICC cannot be negative).")
    stated = [c for c in ("conditioning", "population") if out[c].notna().any()]
    if stated:
        notes.append(
            "Measure: conditional = within a team (cluster-specific), marginal = averaged "
            "over teams (population-average); participant-average weights each service "
            "user equally, cluster-average each team, and efficiency-weighted (a mixed "
            "model or an exchangeable GEE) weights teams by their information, which is "
            "neither unless team sizes are equal."
        )
    return out, notes


def effects(*results: Any, decimals: int = 2, p_decimals: int = 3) -> Table:
    """The effects table: estimate (95% CI), p, df and method, ICC (95% CI), N.

    Parameters
    ----------
    *results
        One or more effects frames with the columns of
        :data:`crtstats.analysis.EFFECT_COLUMNS` (those of
        :data:`crtstats.analysis.OPTIONAL_EFFECT_COLUMNS` may be left out), and/or
        :class:`crtstats.analysis.AnalysisResult` objects (their ``effects``).
        Odds and rate ratios must already be exponentiated, as the contract says.
    decimals
        Decimal places of estimates, limits and ICC.
    p_decimals
        Decimal places of p-values (below ``10**-p_decimals``: ``< 0.001``).

    Returns
    -------
    Table
        The concatenated effects, grouped by outcome (in order of first appearance,
        order kept within an outcome) under the outcome's name for readers (instrument
        titles from the instrument key for questionnaire outcomes: ``csq8`` is
        "CSQ-8 total", ``ghq12_case`` "GHQ-12 caseness") and, where the rows state
        ``outcome_role``, its role in the plan ("CSQ-8 total (primary outcome)");
        each row shown as analysis, role, estimand, measure,
        estimate (95% CI), p, df, df method, ICC (95% CI), teams and observations.
        A boundary fit (zero between-team variance) is marked with a dagger and a
        footnote; a lower ICC limit below 0 is shown as 0, with a note; the measure
        shows the estimand's conditioning and population where the rows state them.

    Raises
    ------
    SchemaValidationError
        If a frame lacks an effects column.
    InvalidParameterError
        If nothing is given, a frame has extra columns, a ratio row is not positive
        (not exponentiated), an estimate lies outside its interval, a p-value is
        outside [0, 1], a role is not one of :data:`crtstats.analysis.ROLES`, an
        outcome has more than one primary row, or an ``outcome_role`` is not
        ``primary``/``secondary`` or differs between the rows of one outcome.

    Notes
    -----
    Intervals are those of the analyses (e.g. t with Kenward-Roger df); the table
    only formats them. ``df`` is ``inf`` for z-based inference. The ICC of a
    mixed-model row is that model's own (on the latent logistic scale,
    :math:`\\sigma_u^2 / (\\sigma_u^2 + \\pi^2/3)`, for a logistic GLMM).

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
    frame, notes = _shown(_grouped(collect_effects(*results)))
    columns = [
        Column("Analysis", ("analysis",), "text", mark_column="boundary_mark"),
        Column("Role", ("role",), "text"),
        Column("Estimand", ("estimand",), "text"),
        Column("Measure", ("measure_shown",), "text"),
        Column("Estimate (95% CI)", ("estimate", "conf_low", "conf_high"), "ci",
               decimals=decimals),
        Column("p", ("pvalue",), "pvalue", decimals=p_decimals),
        Column("df", ("df",), "number", decimals=1),
        Column("df method", ("df_method",), "text"),
        Column("ICC (95% CI)", ("icc", "icc_low_shown", "icc_high"), "ci", decimals=decimals,
               mark_column="icc_mark"),
        Column("Teams", ("n_clusters",), "integer"),
        Column("N", ("nobs",), "integer"),
    ]
    notes = ["CI: confidence interval; ICC: intra-cluster correlation, from the row's own "
             "model where it has one; N: observations analysed. Primary: the pre-specified "
             "primary analysis and time point of each outcome."] + notes
    if frame["scale"].astype(str).isin(RATIO_SCALES).any():
        notes.append("Odds, risk and rate ratios are exponentiated (no effect = 1).")
    if np.isinf(frame["df"].astype(float)).any():
        notes.append("df inf: inference from the normal distribution (z).")
    return Table(frame, columns, title="Estimated effects", row_group="outcome_shown",
                 row_group_label="Outcome", footnotes=notes, label="tab:effects")

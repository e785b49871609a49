"""Effects-table rows: the one builder behind every trial analysis and plan entry.

A row has the columns of :data:`EFFECT_COLUMNS`. From a :class:`~crtstats.CRTResult` it
is a coefficient or linear combination with the result's own small-sample df, interval
and p-value, exponentiated on ratio scales; from a
:class:`~crtstats.PermutationResult` it is the observed statistic and its randomisation
p-value, with no interval. The trial analyses (:func:`crtstats.analyse_fidelity`,
:func:`crtstats.analyse_admissions`) and the runner's model entries all build their rows
here, so a row means the same whoever made it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from crtstats.models import (
    CRTResult,
    Estimand,
    GlmmDetails,
    ICCResult,
    LmmDetails,
    PermutationResult,
    measure_of_scale,
)

__all__ = ["EFFECT_COLUMNS", "OPTIONAL_EFFECT_COLUMNS", "RATIO_SCALES", "ROLES",
           "default_scale", "effect_row", "effects_frame", "is_boundary", "randomisation_row"]

#: Columns of every effects frame, in order. Ratio-scale estimates (odds and rate
#: ratios) are already exponentiated; ``scale`` says which scale a row is on.
EFFECT_COLUMNS = (
    "outcome",      # e.g. "fidelity total", "admitted"
    "analysis",     # e.g. "LMM arm x review", "ANCOVA (CR2)"
    "role",         # "primary" or "sensitivity"
    "estimand",     # e.g. "arm effect at 12m"
    "scale",        # "difference", "odds ratio", "rate ratio", "risk difference"
    "estimate",
    "conf_low",
    "conf_high",
    "pvalue",
    "df",           # inf for z
    "df_method",
    "cov_type",
    "icc",          # NaN where the analysis has none
    "icc_low",
    "icc_high",
    "n_clusters",
    "nobs",
    "boundary",     # True where the row's mixed model has zero cluster variance
    "icc_source",   # "model" (the row's own fit), "separate" (given to the builder), ""
    "population",   # "participant-average", "cluster-average" or "efficiency-weighted"
    "measure",      # "mean difference", "risk difference", "risk ratio", "odds ratio"...
    "conditioning",  # "conditional" (cluster-specific) or "marginal"
)

#: Columns a hand-made effects frame may leave out (the table builders then take
#: ``boundary`` as False, an ICC as the row model's own and the estimand as unstated):
#: ``boundary``, ``icc_source`` and the
#: estimand's ``population``
#: (``"participant-average"``, ``"cluster-average"``), ``measure`` (``"mean
#: difference"``, ``"odds ratio"``...) and ``conditioning`` (``"conditional"``, i.e.
#: cluster-specific, or ``"marginal"``).
OPTIONAL_EFFECT_COLUMNS = ("boundary", "icc_source", "population", "measure",
                           "conditioning")

#: The roles of effects rows: the pre-specified primary analysis of an outcome at its
#: primary time point (one row per outcome), the same analysis at other time points,
#: and sensitivity analyses.
ROLES = ("primary", "secondary", "sensitivity")

#: Scales on which estimates are exponentiated (reference value 1, not 0).
RATIO_SCALES = frozenset({"odds ratio", "rate ratio", "risk ratio"})

_LINK_SCALES = {"logit": "odds ratio", "log": "rate ratio"}
#: lme4's ``isSingular()`` tolerance on the relative cluster SD.
_BOUNDARY_SD = 1e-4


def default_scale(fit: CRTResult, terms: Iterable[str]) -> str:
    """The scale of an estimand of ``fit``: from its link, or the cluster-level term.

    ``logit`` gives odds ratios and ``log`` rate ratios; the cluster-level
    ``log_ratio`` is a risk ratio for a binary outcome and a rate ratio otherwise, and
    its ``difference`` a risk difference for a binary outcome; anything else is a
    difference.
    """
    if fit.link in _LINK_SCALES:
        return _LINK_SCALES[fit.link]
    binary = fit.family == "binomial"
    chosen = list(terms)
    if chosen == ["log_ratio"]:
        return "risk ratio" if binary else "rate ratio"
    if chosen == ["difference"] and binary:
        return "risk difference"
    return "difference"


def _inference(fit: CRTResult, weights: Mapping[str, float], label: str
               ) -> tuple[float, float, float, float, float, str]:
    """Estimate, 95% limits, p, df and df method, on the linear-predictor scale."""
    if len(weights) == 1 and next(iter(weights.values())) == 1.0:
        # one coefficient: the fit's own inference (a contrast would also touch the
        # covariances of the other terms, which some fits leave unestimated)
        (term,) = weights
        k = fit.param_names.index(term)
        low, high = (float(v) for v in fit.conf_int().to_numpy()[k])
        return (float(fit.param_values[k]), low, high, float(fit.pvalues.to_numpy()[k]),
                float(fit.df_values[k]), fit.df_method)
    result = fit.contrast(dict(weights), name=label)
    low, high = result.conf_int()
    return result.estimate, low, high, result.pvalue, result.df, result.df_method


def is_boundary(fit: CRTResult) -> bool:
    """Whether ``fit`` is a mixed model whose cluster variance is estimated as zero.

    An LMM says so in its details; a GLMM is on the boundary when its cluster SD is
    below lme4's ``isSingular()`` tolerance (1e-4).
    """
    details = fit.details
    if isinstance(details, LmmDetails):
        return bool(details.boundary)
    if isinstance(details, GlmmDetails):
        return bool(details.cluster_sd < _BOUNDARY_SD)
    return False


def _icc_values(icc: ICCResult | float | None, source: str) -> dict[str, Any]:
    if isinstance(icc, ICCResult):
        return {"icc": float(icc.estimate), "icc_low": float(icc.conf_low),
                "icc_high": float(icc.conf_high), "icc_source": source}
    value = np.nan if icc is None else float(icc)
    return {"icc": value, "icc_low": np.nan, "icc_high": np.nan,
            "icc_source": "" if np.isnan(value) else source}


def effect_row(
    fit: CRTResult,
    weights: Mapping[str, float],
    *,
    outcome: str,
    analysis: str,
    role: str,
    estimand: str,
    scale: str | None = None,
    icc: ICCResult | float | None = None,
    attributes: Estimand | None = None,
) -> dict[str, Any]:
    """One effects row: the estimand ``sum(weights * params)`` of ``fit``.

    Parameters
    ----------
    fit
        The fitted model.
    weights
        Coefficient names and weights; ``{term: 1}`` reads the fit's own inference
        for that coefficient, anything else goes through :meth:`CRTResult.contrast`.
    outcome, analysis, role, estimand
        The row's labels.
    scale
        The reporting scale; by default :func:`default_scale`. On a ratio scale the
        estimate and limits are exponentiated.
    icc
        The ICC of a row whose model has none of its own (GEE, cluster-level, OLS): an
        :class:`~crtstats.ICCResult` (with its interval), a number, or ``None`` (NaN);
        ``icc_source`` is then ``"separate"``. A mixed model's row always shows that
        model's own ICC (``fit.icc``, ``icc_source`` ``"model"``), so the ICC beside
        its estimate comes from the model that gave it: zero at a boundary fit.
    attributes
        The estimand's population and conditioning; by default ``fit.estimand``. The
        row's ``measure`` follows its scale.

    Returns
    -------
    dict
        The row, keyed by :data:`EFFECT_COLUMNS`; ``boundary`` says whether the fit is
        a mixed model with zero cluster variance (:func:`is_boundary`).

    Raises
    ------
    ModelSpecificationError, InvalidParameterError
        As :meth:`CRTResult.contrast`, e.g. for a name the model lacks.

    Examples
    --------
    >>> import crtstats
    >>> trial = crtstats.datasets.load_example()
    >>> scores = crtstats.score_fidelity(trial.fidelity).merge(trial.teams, on="team_id")
    >>> fit = crtstats.ols("total ~ arm", scores[scores["review"] == "12m"],
    ...                    cluster="team_id")
    >>> row = effect_row(fit, {"arm[T.intervention]": 1.0}, outcome="total",
    ...                  analysis="OLS", role="sensitivity", estimand="arm at 12m")
    >>> row["scale"], row["df_method"]
    ('difference', 'bell-mccaffrey')
    """
    chosen = scale if scale is not None else default_scale(fit, weights)
    estimate, low, high, pvalue, df, df_method = _inference(fit, weights, estimand)
    if chosen in RATIO_SCALES:
        estimate, low, high = (float(v) for v in np.exp([estimate, low, high]))
    return {
        "outcome": outcome, "analysis": analysis, "role": role, "estimand": estimand,
        "scale": chosen, "estimate": float(estimate), "conf_low": float(low),
        "conf_high": float(high), "pvalue": float(pvalue), "df": float(df),
        "df_method": df_method, "cov_type": fit.cov_type,
        **(_icc_values(fit.icc, "model") if fit.icc is not None
           else _icc_values(icc, "separate")),
        "n_clusters": fit.n_clusters, "nobs": fit.nobs, "boundary": is_boundary(fit),
        **(attributes or fit.estimand).with_measure(chosen).as_dict(),
    }


def randomisation_row(
    test: PermutationResult,
    *,
    outcome: str,
    analysis: str,
    role: str,
    estimand: str,
    scale: str,
    n_clusters: int,
    nobs: int,
    icc: ICCResult | None = None,
    population: str = "cluster-average",
) -> dict[str, Any]:
    """One effects row from a randomisation test: its observed statistic and p-value.

    ``scale`` is that of the statistic's exponential on a ratio scale (a mean
    difference of log values gives a ratio) and of the statistic itself otherwise. The
    row has no interval and no df; ``df_method`` says ``randomisation (exact)`` or
    ``randomisation (Monte Carlo, <n> draws)``. The statistic compares unweighted
    cluster values, so by default the row's population is ``"cluster-average"``
    (marginal).
    """
    estimate = float(np.exp(test.observed)) if scale in RATIO_SCALES else float(test.observed)
    draws = "exact" if test.exact else f"Monte Carlo, {test.n_resamples} draws"
    return {
        "outcome": outcome, "analysis": analysis, "role": role, "estimand": estimand,
        "scale": scale, "estimate": estimate, "conf_low": np.nan, "conf_high": np.nan,
        "pvalue": float(test.pvalue), "df": np.nan, "df_method": f"randomisation ({draws})",
        "cov_type": "none", **_icc_values(icc, "separate"), "n_clusters": int(n_clusters),
        "nobs": int(nobs), "boundary": False, "population": population,
        "measure": measure_of_scale(scale), "conditioning": "marginal",
    }


def effects_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Rows as an effects frame: the columns of :data:`EFFECT_COLUMNS`, then those of
    :data:`OPTIONAL_EFFECT_COLUMNS` not among them that any row has."""
    records = list(rows)
    extra = [c for c in OPTIONAL_EFFECT_COLUMNS
             if c not in EFFECT_COLUMNS and any(c in r for r in records)]
    return pd.DataFrame(records, columns=[*EFFECT_COLUMNS, *extra])

"""One effects-table row from a fitted model or a randomisation test.

The row has the columns of :data:`crtstats.analysis.EFFECT_COLUMNS`. The estimand is a
coefficient or linear combination of a :class:`~crtstats.CRTResult`, with the result's
own small-sample df, interval and p-value (via :meth:`~crtstats.CRTResult.contrast`),
exponentiated for logit and log links; or the observed statistic and p-value of a
:class:`~crtstats.models.PermutationResult`, which has no interval.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from crtstats.analysis import EFFECT_COLUMNS
from crtstats.exceptions import PlanError
from crtstats.runner._plan import AnalysisSpec

__all__ = ["effect_row"]

_LINK_SCALES = {"logit": "odds ratio", "log": "rate ratio"}


def _weights(spec: AnalysisSpec, names: list[str], wanted_by: str) -> tuple[dict[str, float],
                                                                           str | None]:
    """The estimand's weights and, when chosen by default, its label."""
    if spec.contrast:
        return dict(spec.contrast), None
    if spec.term is not None:
        plain = spec.term in ("difference", "log_ratio") or spec.term.startswith("arm[")
        return {spec.term: 1.0}, "intervention vs control" if plain else None
    arm = [n for n in names if n.startswith("arm")]
    if len(arm) == 1:
        return {arm[0]: 1.0}, "intervention vs control"
    if len(names) == 1 and names[0] in ("difference", "log_ratio"):  # cluster-level
        return {names[0]: 1.0}, "intervention vs control"
    raise PlanError(f"{wanted_by}: say which coefficient is the estimand with term = \"...\" "
                    f"or contrast = {{...}}; the model has: {', '.join(names)}.")


def _scale(fit: Any, terms: list[str]) -> str:
    link = str(getattr(fit, "link", "identity"))
    if link in _LINK_SCALES:
        return _LINK_SCALES[link]
    binary = str(getattr(fit, "family", "gaussian")) == "binomial"
    if terms == ["log_ratio"]:
        return "risk ratio" if binary else "rate ratio"
    if terms == ["difference"] and binary:
        return "risk difference"
    return "difference"


def _inference(
    fit: Any, weights: dict[str, float], label: str,
) -> tuple[float, float, float, float, float]:
    """Estimate, 95% interval, p and df of the estimand, on the linear-predictor scale."""
    if len(weights) == 1 and next(iter(weights.values())) == 1.0:
        # one coefficient: read the fit's own inference (a contrast would also touch the
        # covariances of the other terms, which some fits leave unestimated)
        (term,) = weights
        interval = fit.conf_int().loc[term]
        return (float(fit.params[term]), float(interval.iloc[0]), float(interval.iloc[1]),
                float(fit.pvalues[term]), float(fit.df[term]))
    result = fit.contrast(weights, name=label)
    low, high = result.conf_int()
    return result.estimate, low, high, result.pvalue, result.df


def _model_row(spec: AnalysisSpec, fit: Any, wanted_by: str) -> dict[str, Any]:
    names = list(fit.param_names)
    weights, default_label = _weights(spec, names, wanted_by)
    unknown = [t for t in weights if t not in names]
    if unknown:
        raise PlanError(f"{wanted_by}: the estimand names coefficient(s) {unknown} that the "
                        f"model does not have; it has: {', '.join(names)}.")
    label = spec.estimand or default_label or " + ".join(
        t if w == 1 else f"{w:g} * {t}" for t, w in weights.items()
    )
    estimate, low, high, pvalue, df = _inference(fit, weights, label)
    scale = _scale(fit, list(weights))
    if scale.endswith("ratio"):
        estimate, low, high = np.exp([estimate, low, high])
    icc = getattr(fit, "icc", None)
    return {
        "estimand": label, "scale": scale, "estimate": float(estimate),
        "conf_low": float(low), "conf_high": float(high), "pvalue": float(pvalue),
        "df": float(df), "df_method": fit.df_method, "cov_type": fit.cov_type,
        "icc": float(icc) if icc is not None else np.nan,
        "n_clusters": fit.n_clusters, "nobs": fit.nobs,
    }


def _permutation_row(
    spec: AnalysisSpec, test: Any, frame: pd.DataFrame, wanted_by: str,
) -> dict[str, Any]:
    outcome = frame[str(spec.options["outcome"])]
    binary = bool(outcome.dropna().isin([0, 1]).all())
    if test.statistic == "mean_difference":
        estimate, scale = test.observed, "risk difference" if binary else "difference"
    elif test.statistic == "log_ratio":
        estimate, scale = np.exp(test.observed), "risk ratio" if binary else "rate ratio"
    else:
        raise PlanError(f"{wanted_by}: the effects table reports permutation tests of "
                        "statistic = \"mean_difference\" or \"log_ratio\"; got "
                        f"{test.statistic!r}.")
    draws = "exact" if test.exact else f"{test.n_resamples} random allocations"
    return {
        "estimand": spec.estimand or "intervention vs control", "scale": scale,
        "estimate": float(estimate), "conf_low": np.nan, "conf_high": np.nan,
        "pvalue": float(test.pvalue), "df": np.nan, "df_method": f"randomisation ({draws})",
        "cov_type": "none", "icc": np.nan,
        "n_clusters": int(frame[spec.cluster].nunique()), "nobs": int(outcome.notna().sum()),
    }


def effect_row(
    spec: AnalysisSpec, fit: Any, frame: pd.DataFrame, wanted_by: str,
) -> pd.DataFrame:
    """The effects-table row of one model entry of a plan.

    Parameters
    ----------
    spec
        The ``[[analysis]]`` entry (its ``term``, ``contrast`` and ``estimand``).
    fit
        What the fitter returned: a ``CRTResult`` or a ``PermutationResult``.
    frame
        The rows the fitter was given.
    wanted_by
        The plan entry, for error messages.

    Returns
    -------
    pandas.DataFrame
        One row with the columns of ``EFFECT_COLUMNS``.

    Raises
    ------
    PlanError
        If the estimand names a coefficient the model lacks, or none is given and the
        model has no single arm coefficient.
    """
    if hasattr(fit, "param_names"):
        row = _model_row(spec, fit, wanted_by)
        outcome = str(spec.formula).split("~", 1)[0].strip() if spec.formula else str(
            spec.options.get("outcome"))
    else:
        row = _permutation_row(spec, fit, frame, wanted_by)
        outcome = str(spec.options["outcome"])
    row.update(outcome=outcome, analysis=spec.label, role=spec.role, icc_low=np.nan,
               icc_high=np.nan)
    return pd.DataFrame([row], columns=list(EFFECT_COLUMNS))

"""Cluster-level analysis: t-tests on cluster summaries, and two-stage covariate adjustment."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

from crtstats._options import check_option
from crtstats.exceptions import (
    ContinuityCorrectionWarning,
    ConvergenceWarning,
    InvalidParameterError,
    ModelSpecificationError,
    SeparationWarning,
)
from crtstats.models._checks import check_rank, cluster_level_columns
from crtstats.models._cluster_data import (
    check_arguments,
    check_outcome_values,
    cluster_table,
    complete_rows,
    row_sizes,
    treatment_indicator,
)
from crtstats.models._design import build_design
from crtstats.models._result import CRTResult
from crtstats.models._warn import WarningLog

__all__ = ["ClusterWeights", "EffectScale", "OutcomeType", "cluster_level"]

ClusterWeights = Literal["unweighted", "weighted"]
OutcomeType = Literal["continuous", "binary", "count"]
EffectScale = Literal["difference", "ratio"]
_WEIGHTS: tuple[ClusterWeights, ...] = get_args(ClusterWeights)
_OUTCOME_TYPES: tuple[OutcomeType, ...] = get_args(OutcomeType)
_SCALES: tuple[EffectScale, ...] = get_args(EffectScale)

_FITTER = "cluster_level"
_KIND = {"binary": "proportion", "count": "rate", "continuous": "mean"}
_FAMILY = {"binary": "binomial", "count": "poisson", "continuous": "gaussian"}
_MEASURE = {("binary", "difference"): "risk difference",
            ("binary", "ratio"): "risk ratio (ratio of geometric mean cluster risks)",
            ("count", "difference"): "rate difference",
            ("count", "ratio"): "rate ratio (ratio of geometric mean cluster rates)",
            ("continuous", "difference"): "mean difference"}
#: The pooled SD of the compared values counts as zero below this fraction of their size.
_ZERO_SD = 1e-12
#: A stage-1 fitted risk this close to 0 or 1 (or rate this far below the overall rate)
#: means a coefficient diverged: quasi-complete separation.
_EDGE = 1e-8


def _check_combination(outcome_type: str, scale: str, exposure: str | None,
                       offset: str | None, arm: str, covariates: Sequence[str]) -> None:
    if scale == "ratio" and outcome_type == "continuous":
        raise InvalidParameterError(
            "cluster_level: scale='ratio' is for risks and rates (outcome_type='binary' or "
            "'count'); got outcome_type='continuous'. Use scale='difference', or analyse "
            "the logarithm of a positive outcome."
        )
    if outcome_type != "count" and (exposure is not None or offset is not None):
        raise InvalidParameterError(
            f"cluster_level: exposure= and offset= give the denominator of a rate and need "
            f"outcome_type='count'; got outcome_type={outcome_type!r}."
        )
    if arm in covariates:
        raise ModelSpecificationError(
            f"covariates must not include the arm {arm!r}: the two-stage method fits them "
            "without the arm."
        )


def _check_not_constant(y: np.ndarray, outcome: str, outcome_type: str, sized: bool) -> None:
    """Refuse an outcome with no variation (or no events) before anything is fitted."""
    if outcome_type == "count" and sized and y.max() > 0:
        return  # equal counts over unequal exposures are unequal rates
    if y.min() == y.max():
        raise ModelSpecificationError(
            f"cluster_level: every value of {outcome!r} is {float(y[0])!r} in the {y.size} row(s) "
            "analysed: the outcome is constant, so the cluster summaries do not vary, the "
            "t-test's standard error is zero and a ratio is not identified. There is no "
            "comparison to make; report the counts instead."
        )


def _stage1(data: pd.DataFrame, y: np.ndarray, cluster: str, covariates: Sequence[str],
            outcome_type: str, scale: str, exposure: str | None, offset: str | None,
            log: WarningLog) -> tuple[np.ndarray, int]:
    """Expected value per row from the regression on the covariates without the arm."""
    frame = data.assign(_y=y)
    formula = "_y ~ " + " + ".join(covariates)
    design = build_design(formula, frame, cluster=cluster, exposure=exposure, offset=offset)
    shown = formula.replace("_y", "outcome", 1)
    check_rank(design.X, design.names, formula=shown)
    family: Any = {"binary": sm.families.Binomial(), "count": sm.families.Poisson(),
                   "continuous": sm.families.Gaussian()}[outcome_type]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = sm.GLM(design.y, design.X, family=family,
                     offset=design.offset if outcome_type == "count" else None,
                     ).fit(tol=1e-13, maxiter=200)
    if any(issubclass(w.category, PerfectSeparationWarning) for w in caught):
        raise ModelSpecificationError(
            f"cluster_level: stage 1 of the two-stage method ({shown!r}) shows perfect "
            "separation or prediction: the covariates predict the outcome exactly for some "
            "rows, so their expected values equal the observed ones and the adjustment "
            "absorbs the outcome it should compare. Drop or merge the covariate(s) or levels (e.g. "
            "strata with no events) that predict it exactly, or analyse unadjusted."
        )
    for message in dict.fromkeys(str(w.message) for w in caught):  # once per message
        log.warn(f"cluster_level: stage 1 of the two-stage method ({shown!r}): {message}",
                 ConvergenceWarning)
    if not getattr(fit, "converged", True):
        log.warn(f"cluster_level: stage 1 ({shown!r}) did not converge in 200 iterations; "
                 "the expected totals may be wrong. Simplify the covariates.",
                 ConvergenceWarning)
    mu = np.asarray(fit.fittedvalues, dtype=float)
    _check_quasi_separation(mu, design.y, design.offset, outcome_type, scale, shown, log)
    q = int(cluster_level_columns(design.X, design.groups, design.n_clusters).sum()) - 1
    return mu, q


def _check_quasi_separation(mu: np.ndarray, y: np.ndarray, offset: np.ndarray,
                            outcome_type: str, scale: str, shown: str, log: WarningLog,
                            ) -> None:
    """Rows whose stage-1 fitted risk is within ``_EDGE`` of 0 or 1, or whose fitted rate
    is below ``_EDGE`` times the overall rate: coefficients that diverged (e.g. a
    stratum with no events). Their two-stage difference residuals are the limits, 0;
    their ratio residuals ``O / E`` are 0 / 0, so a ratio is refused."""
    if outcome_type == "binary":
        edge = np.minimum(mu, 1.0 - mu) < _EDGE
    elif outcome_type == "count":
        rate = mu / np.exp(offset)
        edge = rate < _EDGE * (y.sum() / np.exp(offset).sum())
    else:
        return
    if not edge.any():
        return
    what = (f"cluster_level: stage 1 of the two-stage method ({shown!r}) shows "
            f"quasi-complete separation: {int(edge.sum())} row(s) have a fitted "
            f"{'risk' if outcome_type == 'binary' else 'rate'} at its limit (0 or 1), so "
            "some coefficients are infinite (a stratum or level with no events, or only "
            "events?)")
    if scale == "ratio":
        raise ModelSpecificationError(
            f"{what}. Their expected totals are 0 and the ratio residuals 0 / 0: the "
            "ratio is not identified. Merge or drop the covariate levels with no events, "
            "or use scale='difference'."
        )
    log.warn(f"{what}; their difference residuals are 0, the limit.", SeparationWarning)


def _residual_df(table: pd.DataFrame, q: int) -> float:
    """``k - 2 - q`` after checking that each arm has two clusters and df remain."""
    per_arm = table.groupby("treated").size().rename({0.0: "control", 1.0: "treated"})
    if per_arm.min() < 2:
        raise ModelSpecificationError(
            f"cluster_level: each arm needs at least two clusters for a t-test (the "
            f"variance between clusters within an arm); got {per_arm.to_dict()}. With one "
            "cluster per arm the effect cannot be separated from cluster variation."
        )
    df = float(len(table) - 2 - q)
    if df < 1:
        raise ModelSpecificationError(
            f"cluster_level: {len(table)} clusters and {q} cluster-level covariate "
            "column(s) leave no df; adjust for fewer covariates."
        )
    return df


def _log_ratio_values(table: pd.DataFrame, adjusted: bool, cluster: str, outcome: str,
                      kind: str, log: WarningLog) -> np.ndarray:
    """Log summaries (or log ratio residuals), 0.5 added to the totals of zero clusters."""
    observed = table["observed"].to_numpy(float)
    arm = table["treated"].to_numpy(float) > 0
    e1, e0 = float(observed[arm].sum()), float(observed[~arm].sum())
    if e1 == 0 or e0 == 0:
        none = "either" if e1 == e0 else ("the control" if e0 == 0 else "the intervention")
        raise ModelSpecificationError(
            f"cluster_level: the {kind} ratio is not identified: there are no events of "
            f"{outcome!r} in {none} arm (events: intervention {e1:g}, control {e0:g}). "
            "A ratio with zero events is 0, infinite "
            "or undefined, and a 0.5 correction would only report the correction. Use "
            "scale='difference', or an exact method for sparse counts."
        )
    zero = observed == 0
    base = table["expected" if adjusted else "size"].to_numpy(float)
    ratio = np.where(zero, 0.5, observed) / base
    if zero.any():
        log.warn(
            f"cluster_level: {int(zero.sum())} cluster(s) with no events "
            f"({list(table.loc[zero, cluster])}): 0.5 added to their totals for the log "
            "ratio; the estimate depends on this correction.", ContinuityCorrectionWarning)
    out: np.ndarray = np.log(ratio)
    return out


def _compared_values(table: pd.DataFrame, scale: str, adjusted: bool, cluster: str,
                     outcome: str, outcome_type: str, log: WarningLog) -> np.ndarray:
    """What the t-test compares: summaries or two-stage residuals, or their logs."""
    if scale == "ratio":
        kind = "risk" if outcome_type == "binary" else "rate"
        return _log_ratio_values(table, adjusted, cluster, outcome, kind, log)
    if not adjusted:
        return table["summary"].to_numpy(float)
    out: np.ndarray = ((table["observed"] - table["expected"]) / table["size"]).to_numpy(float)
    return out


def _two_group_t(values: np.ndarray, treated: np.ndarray, weights: np.ndarray,
                 what: str, size: float) -> tuple[float, float]:
    """Difference (treated minus control) of weighted means and its pooled-variance SE.

    Computed from values centred within each arm, so that adding a constant to every
    value changes nothing; ``sigma^2 = sum w (v - mean_arm)^2 / (k - 2)`` and
    ``SE^2 = sigma^2 (1 / W_1 + 1 / W_0)``, the weighted least squares SE of the arm.
    A pooled SD below ``_ZERO_SD * size`` (``size`` the magnitude of the values and of
    the cluster summaries) is zero, and refused.
    """
    arm = treated > 0
    w1, w0 = weights[arm].sum(), weights[~arm].sum()
    m1 = float(np.average(values[arm], weights=weights[arm]))
    m0 = float(np.average(values[~arm], weights=weights[~arm]))
    resid = values - np.where(arm, m1, m0)
    sigma2 = float(weights @ resid**2) / (values.size - 2)
    if np.sqrt(sigma2 * values.size / weights.sum()) <= _ZERO_SD * size:
        raise ModelSpecificationError(
            f"cluster_level: the {what} do not vary between clusters within either arm "
            f"(intervention mean {m1!r}, control mean {m0!r}): the t-test's standard error is zero "
            "and no p-value or interval exists. Check the outcome; a cluster-level test "
            "needs variation between clusters."
        )
    return m1 - m0, float(np.sqrt(sigma2 * (1.0 / w1 + 1.0 / w0)))


def _estimand(outcome_type: str, scale: str, weights: str, covariates: Sequence[str]) -> str:
    population = ("cluster-average (each cluster counts once)" if weights == "unweighted"
                  else "size-weighted (clusters weighted by "
                  + ("total exposure)" if outcome_type == "count" else "their size)"))
    adjusted = (f"adjusted for {', '.join(covariates)} by two-stage residuals"
                if covariates else "unadjusted")
    text = f"{_MEASURE[outcome_type, scale]}, intervention vs control, {population}, {adjusted}"
    return text + ("; the estimate is its logarithm" if scale == "ratio" else "")


def _summaries(used: pd.DataFrame, y: np.ndarray, size: np.ndarray, arm: str, cluster: str,
               treated: Any) -> pd.DataFrame:
    table = cluster_table(used, arm=arm, cluster=cluster)
    sums = pd.DataFrame({"c": used[cluster].to_numpy(), "observed": y, "size": size}
                        ).groupby("c", sort=False)[["observed", "size"]].sum()
    table = table.join(sums, on=cluster)
    table["treated"] = treatment_indicator(table[arm], treated)
    table["summary"] = table["observed"] / table["size"]
    return table


def cluster_level(
    data: pd.DataFrame,
    *,
    outcome: str,
    arm: str,
    cluster: str,
    outcome_type: OutcomeType = "continuous",
    scale: EffectScale = "difference",
    covariates: Sequence[str] = (),
    exposure: str | None = None,
    offset: str | None = None,
    weights: ClusterWeights = "unweighted",
    treated: Any = None,
) -> CRTResult:
    """Cluster-level analysis of a mean, proportion or rate (Hayes and Moulton).

    Parameters
    ----------
    data
        One row per individual (or per cluster and period for counts with exposure).
    outcome
        Numeric outcome column.
    arm, cluster
        Columns of the allocated arm (constant within clusters) and of the clusters.
    outcome_type
        What the outcome is, declared (never guessed from its values):
        ``"continuous"`` (default; cluster means), ``"binary"`` (0/1; cluster
        proportions) or ``"count"`` (whole numbers >= 0; cluster rates, events per
        unit of exposure, or per row without one).
    scale
        ``"difference"`` (default): intervention minus control mean of the summaries;
        ``"ratio"`` (binary or count): the same for their logarithms, a log ratio of
        geometric means.
    covariates
        Columns to adjust for by the two-stage residual method. Empty: unadjusted.
    exposure
        Raw exposure column of a count (person-time, service users), summed per
        cluster as the rate's denominator.
    offset
        Log-scale exposure column of a count (as ``offset=`` of ``glmm`` and ``gee``):
        a row's exposure is ``exp(offset)`` (times ``exposure`` when both are given).
        A cluster-level rate needs only the denominators; a log offset is accepted so
        that the same columns serve every fitter.
    weights
        ``"unweighted"`` (default; each cluster counts once) or ``"weighted"`` (by
        cluster size, or total exposure for counts).
    treated
        The arm value of the intervention; by default ``"intervention"`` (or 1).

    Returns
    -------
    CRTResult
        ``model="cluster_level"`` with one term: ``"difference"`` or ``"log_ratio"``
        (``exp`` of it is the risk or rate ratio). ``info["estimand"]`` states it in
        words; ``info`` also holds ``outcome_type``, ``scale``, ``kind``
        (``"mean"``, ``"proportion"`` or ``"rate"``), ``adjusted_for``,
        ``n_cluster_covariates``, ``n_excluded`` and ``clusters``: one row per cluster
        with ``observed`` (total), ``size``, ``expected`` (two-stage), ``summary`` and
        ``value``, the quantity compared between arms.

    Raises
    ------
    InvalidParameterError
        On an unknown option value, a non-column argument, ``scale="ratio"`` for a
        continuous outcome, or ``exposure``/``offset`` for an outcome that is not a
        count.
    MissingColumnError
        If a column is not in ``data``.
    ModelSpecificationError
        On a missing arm, an outcome value that does not suit ``outcome_type`` (the
        message names the row), an infinite value, a non-positive exposure, a constant
        outcome, an arm that varies within a cluster, fewer than two clusters per arm,
        no df left, summaries that do not vary within the arms (zero standard error),
        a ratio with no events in an arm (not identified), perfect separation in the
        stage-1 regression, or quasi-complete separation with ``scale="ratio"``.

    Warns
    -----
    ExcludedRowsWarning
        Rows with a missing outcome, covariate, exposure, offset or cluster are left
        out (the message counts them and names clusters left with no rows).
    ContinuityCorrectionWarning
        A ratio with clusters that have no events: 0.5 is added to their totals.
    ExposureWarning
        An ``offset`` of whole numbers above 1 looks like a raw exposure.
    SeparationWarning
        Quasi-complete separation in stage 1 with ``scale="difference"`` (the
        residuals of the separated rows are their limit, 0).
    ConvergenceWarning
        From the stage-1 regression of the two-stage method (each message once).

    Every warning is also recorded in the result's ``warnings``.

    Notes
    -----
    Cluster ``i`` has observed total ``O_i = sum_j y_ij`` over size ``n_i = sum_j
    s_ij`` (``s_ij`` = 1, or the row's exposure ``e_ij exp(o_ij)``), and summary
    ``O_i / n_i``. Unadjusted, the difference is the (weighted) mean summary in the
    intervention arm minus that in control, and the log ratio the same for
    ``log(O_i / n_i)``. With weights ``w_i`` (1 or ``n_i``) and ``W_a`` their sum in
    arm a, ``SE^2 = s^2 (1/W_1 + 1/W_0)`` with ``s^2 = sum_i w_i (v_i - vbar_a)^2 /
    (k - 2)``: the pooled two-sample t-test (weighted least squares on the arm), with
    ``k - 2`` df for k clusters.

    Adjusted (two-stage): stage 1 fits the individual-level regression of the
    outcome on the covariates without the arm (logistic for binary, Poisson with
    offset ``log s_ij`` for counts, linear for continuous), ignoring clustering;
    with expected totals ``E_i``, the difference residuals ``(O_i - E_i) / n_i`` or
    the log ratio residuals ``log(O_i / E_i)`` are compared between arms as above,
    with ``k - 2 - q`` df, q the number of cluster-level covariate columns.

    A cluster with no events has no log summary: for ``scale="ratio"`` 0.5 is added
    to its observed total (Hayes and Moulton 2017, section 9.2.2). When an arm has no
    events at all, the ratio is not identified and the analysis is refused.

    References
    ----------
    Hayes RJ, Moulton LH (2017). Cluster Randomised Trials, 2nd ed., chapters 9-10.
    Chapman & Hall/CRC.

    Examples
    --------
    >>> import numpy as np, crtstats
    >>> trial = crtstats.datasets.load_example()
    >>> fu = trial.admissions[trial.admissions["period"] == "follow_up"].merge(
    ...     trial.teams, on="team_id")
    >>> res = crtstats.cluster_level(fu, outcome="admitted", arm="arm", cluster="team_id",
    ...                              outcome_type="binary", scale="ratio")
    >>> res.param_names, int(res.df["log_ratio"])
    (('log_ratio',), 23)
    >>> res.info["estimand"].split(",")[0]
    'risk ratio (ratio of geometric mean cluster risks)'

    R: ``t.test(log(p) ~ arm, data = team_props, var.equal = TRUE)`` on the team
    proportions ``p``.
    """
    check_option("outcome_type", outcome_type, _OUTCOME_TYPES)
    check_option("scale", scale, _SCALES)
    check_option("weights", weights, _WEIGHTS)
    covariates = check_arguments(
        _FITTER, data, {"outcome": outcome, "arm": arm, "cluster": cluster,
                        "exposure": exposure, "offset": offset},
        optional=("exposure", "offset"), covariates=covariates)
    _check_combination(outcome_type, scale, exposure, offset, arm, covariates)
    log = WarningLog()
    rate_cols = [c for c in (exposure, offset) if c is not None]
    rows = complete_rows(data, fitter=_FITTER, design=[arm], cluster=cluster,
                         measured=[outcome, *covariates, *rate_cols], log=log)
    used = rows.data
    y = check_outcome_values(used, outcome, outcome_type, fitter=_FITTER)
    size = row_sizes(used, exposure=exposure, offset=offset, fitter=_FITTER, log=log)
    _check_not_constant(y, outcome, outcome_type, bool(rate_cols))
    table = _summaries(used, y, size, arm, cluster, treated)
    q = 0
    table["expected"] = np.nan
    if covariates:
        expected, q = _stage1(used, y, cluster, covariates, outcome_type, scale, exposure,
                              offset, log)
        table["expected"] = table[cluster].map(
            pd.Series(expected).groupby(used[cluster].to_numpy(), sort=False).sum())
    df = _residual_df(table, q)
    term = "log_ratio" if scale == "ratio" else "difference"
    table["value"] = _compared_values(table, scale, bool(covariates), cluster, outcome,
                                      outcome_type, log)
    k = len(table)
    w = table["size"].to_numpy(float) if weights == "weighted" else np.ones(k)
    what = "cluster summaries" if not covariates else "two-stage residuals"
    values = table["value"].to_numpy(float)
    magnitude = max(float(np.max(np.abs(values))), float(table["summary"].abs().max()))
    est, se = _two_group_t(values, table["treated"].to_numpy(float), w, what, magnitude)
    return CRTResult(
        model="cluster_level",
        formula=f"{outcome} ~ {arm}" + "".join(f" + {c}" for c in covariates),
        param_names=(term,),
        param_values=np.array([est]),
        cov_values=np.array([[se**2]]),
        df_values=np.array([df]),
        df_method="cluster-level t",
        cov_type=weights,
        nobs=int(len(used)),
        n_clusters=k,
        family=_FAMILY[outcome_type],
        link="identity",
        warnings=log.records,
        info={
            "estimand": _estimand(outcome_type, scale, weights, covariates),
            "outcome_type": outcome_type,
            "scale": scale,
            "kind": _KIND[outcome_type],
            "adjusted_for": covariates,
            "n_cluster_covariates": q,
            "n_excluded": rows.n_excluded,
            "clusters": table.copy(),
        },
    )

"""Cluster-level analysis: t-tests on cluster summaries, and two-stage covariate adjustment."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
import statsmodels.api as sm

from crtstats._options import check_option
from crtstats.exceptions import ConvergenceWarning, ModelSpecificationError
from crtstats.models._checks import cluster_level_columns, require_columns
from crtstats.models._design import build_design
from crtstats.models._details import ClusterLevelDetails, ModelSpec
from crtstats.models._result import CRTResult

__all__ = ["cluster_level", "cluster_table", "treatment_indicator"]

ClusterWeights = Literal["unweighted", "weighted"]
_WEIGHTS: tuple[ClusterWeights, ...] = get_args(ClusterWeights)
_FAMILY = {"proportion": "binomial", "rate": "poisson", "mean": "gaussian"}


def _require(data: pd.DataFrame, columns: Sequence[str]) -> None:
    if not isinstance(data, pd.DataFrame):
        raise ModelSpecificationError(f"data must be a pandas DataFrame; got {type(data)}.")
    require_columns(data, columns, used_by="cluster_level")


def treatment_indicator(values: pd.Series, treated: Any = None) -> np.ndarray:
    """1.0 where ``values`` is the treated arm, else 0.0; exactly two arms allowed.

    The treated arm is ``treated`` when given, otherwise ``"intervention"`` (or 1 /
    True for numeric or boolean arms).
    """
    levels = list(pd.unique(values.dropna()))
    if len(levels) != 2:
        raise ModelSpecificationError(
            f"the arm column {values.name!r} must have exactly two arms; found {levels}."
        )
    if treated is None:
        candidates = [v for v in levels if v == "intervention" or v is True or v == 1]
        if len(candidates) != 1:
            raise ModelSpecificationError(
                f"cannot tell which of the arms {levels} is the intervention; pass "
                "treated=<that arm's value>."
            )
        treated = candidates[0]
    elif treated not in levels:
        raise ModelSpecificationError(
            f"treated={treated!r} is not one of the arms {levels} in {values.name!r}."
        )
    out: np.ndarray = (values == treated).to_numpy(dtype=float)
    return out


def cluster_table(data: pd.DataFrame, *, arm: str, cluster: str, extra: Sequence[str] = ()
                  ) -> pd.DataFrame:
    """One row per cluster (order of first appearance) with its arm and ``extra`` columns.

    Raises
    ------
    ModelSpecificationError
        If the arm, or an ``extra`` column, varies within a cluster.
    """
    cols = [arm, *extra]
    counts = data.groupby(cluster, sort=False)[cols].nunique(dropna=False)
    for col in cols:
        bad = counts.index[counts[col] > 1]
        if len(bad):
            raise ModelSpecificationError(
                f"{col!r} must be constant within each cluster; it varies in {cluster} "
                f"{list(bad[:5])}."
            )
    return data.groupby(cluster, sort=False)[cols].first().reset_index()


@dataclass(frozen=True)
class _Summaries:
    table: pd.DataFrame  # one row per cluster
    kind: str  # "proportion", "rate" or "mean"
    n_cluster_covariates: int


def _observed_expected(
    data: pd.DataFrame, outcome: str, cluster: str, covariates: Sequence[str],
    exposure: str | None, kind: str,
) -> tuple[pd.DataFrame, int]:
    """Per cluster: observed total, size, expected total (stage 1 of the two-stage method)."""
    size = data[exposure].astype(float) if exposure else pd.Series(1.0, index=data.index)
    frame = pd.DataFrame({"cluster": data[cluster].to_numpy(), "observed": data[outcome]
                          .astype(float).to_numpy(), "size": size.to_numpy()})
    if covariates:
        formula = f"{outcome} ~ " + " + ".join(covariates)
        design = build_design(formula, data, cluster=cluster)
        if kind == "rate":
            family: Any = sm.families.Poisson()
            offset = np.log(size.to_numpy())
        else:
            family = sm.families.Binomial() if kind == "proportion" else sm.families.Gaussian()
            offset = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = sm.GLM(design.y, design.X, family=family, offset=offset).fit()
        for w in caught:
            warnings.warn(
                f"stage 1 of the two-stage method ({formula!r}): {w.message}",
                ConvergenceWarning,
                stacklevel=4,
            )
        frame["expected"] = np.asarray(fit.fittedvalues, dtype=float)
        q = int(cluster_level_columns(design.X, design.groups, design.n_clusters).sum()) - 1
    else:
        frame["expected"] = np.nan
        q = 0
    sums = frame.groupby("cluster", sort=False)[["observed", "size", "expected"]].sum(
        min_count=1
    )
    return sums, q


def _summaries(
    data: pd.DataFrame, outcome: str, arm: str, cluster: str, covariates: Sequence[str],
    exposure: str | None, treated: Any,
) -> _Summaries:
    y = data[outcome]
    if not pd.api.types.is_numeric_dtype(y):
        raise ModelSpecificationError(f"outcome {outcome!r} must be numeric; dtype {y.dtype}.")
    if exposure is not None:
        kind = "rate"
        if (data[exposure] <= 0).any() or (y < 0).any():
            raise ModelSpecificationError(
                f"a rate needs positive exposure {exposure!r} and non-negative counts "
                f"{outcome!r}; found exposure min {data[exposure].min()!r}, count min "
                f"{y.min()!r}."
            )
    else:
        kind = "proportion" if bool(y.isin([0, 1]).all()) else "mean"
    table = cluster_table(data, arm=arm, cluster=cluster)
    sums, q = _observed_expected(data, outcome, cluster, covariates, exposure, kind)
    table = table.join(sums, on=cluster)
    table["treated"] = treatment_indicator(table[arm], treated)
    table["summary"] = table["observed"] / table["size"]
    if covariates:
        table["diff_residual"] = (table["observed"] - table["expected"]) / table["size"]
        table["ratio_residual"] = table["observed"] / table["expected"]
    else:
        table["diff_residual"] = table["summary"]
        table["ratio_residual"] = table["summary"]
    return _Summaries(table=table, kind=kind, n_cluster_covariates=q)


def _two_group_t(values: np.ndarray, treated: np.ndarray, weights: np.ndarray
                 ) -> tuple[float, float]:
    """Difference (treated minus control) of weighted means and its pooled-variance SE."""
    X = np.column_stack([np.ones_like(values), treated])
    fit = sm.WLS(values, X, weights=weights).fit()
    return float(fit.params[1]), float(fit.bse[1])


def _residual_df(table: pd.DataFrame, q: int) -> float:
    """``k - 2 - q`` after checking that each arm has two clusters and df remain."""
    per_arm = table.groupby("treated").size()
    if len(per_arm) < 2 or per_arm.min() < 2:
        raise ModelSpecificationError(
            f"each arm needs at least two clusters; got {per_arm.to_dict()} (1 = treated)."
        )
    df = float(len(table) - 2 - q)
    if df < 1:
        raise ModelSpecificationError(
            f"{len(table)} clusters and {q} cluster-level covariate column(s) leave no df; "
            "adjust for fewer covariates."
        )
    return df


def _log_ratio_values(table: pd.DataFrame, adjusted: bool, cluster: str
                      ) -> tuple[np.ndarray, list[str]]:
    """Log ratio summaries (or residuals), 0.5 added to the totals of zero clusters."""
    zero = table["observed"].to_numpy(float) == 0
    ratio = table["ratio_residual"].to_numpy(float).copy()
    notes = []
    if zero.any():
        base = table["expected"] if adjusted else table["size"]
        ratio[zero] = 0.5 / base.to_numpy(float)[zero]
        notes.append(
            f"{int(zero.sum())} cluster(s) with no events ({list(table.loc[zero, cluster])})"
            ": 0.5 added to their totals for the log ratio."
        )
    return np.log(ratio), notes


def cluster_level(
    data: pd.DataFrame,
    *,
    outcome: str,
    arm: str,
    cluster: str,
    covariates: Sequence[str] = (),
    exposure: str | None = None,
    weights: ClusterWeights = "unweighted",
    treated: Any = None,
) -> CRTResult:
    """Cluster-level analysis of a proportion, mean or rate (Hayes and Moulton).

    Parameters
    ----------
    data
        One row per individual (or per cluster and period for counts with exposure).
    outcome
        Numeric outcome: 0/1 (a proportion), a count (a rate, with ``exposure``) or a
        continuous value (a mean).
    arm, cluster
        Columns of the allocated arm (constant within clusters) and of the clusters.
    covariates
        Columns to adjust for by the two-stage residual method. Empty: unadjusted.
    exposure
        Column of exposure (person-time, users) for a rate; rows are summed per cluster.
    weights
        ``"unweighted"`` (default; each cluster counts once) or ``"weighted"`` (by
        cluster size, or total exposure for rates).
    treated
        The arm value of the intervention; by default ``"intervention"`` (or 1).

    Returns
    -------
    CRTResult
        ``model="cluster_level"`` with the term ``"difference"`` (intervention minus
        control) and, for proportions and rates, ``"log_ratio"``, whose exponent is the
        ratio of (geometric mean) proportions or rates. The covariance between the two
        terms is not estimated (NaN). ``details`` is a
        :class:`~crtstats.models.ClusterLevelDetails`; ``details.clusters`` (a copy)
        holds the cluster summaries:
        ``observed``, ``size``, ``expected`` (two-stage), ``summary``, the residuals
        compared (``diff_residual``, and ``log_ratio_value`` for the log ratio).

    Raises
    ------
    ModelSpecificationError
        On missing columns, a non-numeric outcome, an arm that varies within a
        cluster, fewer than two clusters per arm, or no df left.

    Notes
    -----
    Cluster ``i`` has observed total ``O_i`` over size ``n_i`` (individuals, or
    exposure) and summary ``O_i / n_i``. Unadjusted, the difference is the
    (weighted) mean summary in the intervention arm minus that in control and the
    log ratio is the same for ``log(O_i / n_i)``; with weights ``w_i`` (1 or ``n_i``)
    the standard error is the pooled one of the two-sample t-test (weighted least
    squares on the arm), with ``k - 2`` df for k clusters.

    Adjusted (two-stage): stage 1 fits the individual-level regression of the
    outcome on the covariates without the arm (logistic, Poisson with log-exposure
    offset, or linear), ignoring clustering; with expected totals ``E_i``, the
    difference residuals ``(O_i - E_i) / n_i`` and ratio residuals ``O_i / E_i`` are
    compared between arms as above, with ``k - 2 - q`` df, q the number of
    cluster-level covariate columns.

    A cluster with no events has no log summary: 0.5 is added to its observed total
    for the log ratio only, and the result's ``warnings`` say so.

    References
    ----------
    Hayes RJ, Moulton LH (2017). Cluster Randomised Trials, 2nd ed., chapters 9-10.
    Chapman & Hall/CRC.

    Examples
    --------
    >>> import crtstats
    >>> trial = crtstats.datasets.load_example()
    >>> fu = trial.admissions[trial.admissions["period"] == "follow_up"].merge(
    ...     trial.teams, on="team_id")
    >>> res = crtstats.cluster_level(fu, outcome="admitted", arm="arm", cluster="team_id")
    >>> list(res.param_names), int(res.df["difference"])
    (['difference', 'log_ratio'], 23)

    R: ``t.test(p ~ arm, data = team_props, var.equal = TRUE)`` on the team proportions.
    """
    check_option("weights", weights, _WEIGHTS)
    covariates = tuple(covariates)
    if arm in covariates:
        raise ModelSpecificationError(
            f"covariates must not include the arm {arm!r}: the two-stage method fits them "
            "without the arm."
        )
    cols = list(dict.fromkeys([outcome, arm, cluster, *covariates,
                               *([exposure] if exposure else [])]))
    _require(data, cols)
    complete = data[cols].notna().all(axis=1)
    used = data.loc[complete]
    s = _summaries(used, outcome, arm, cluster, covariates, exposure, treated)
    table = s.table
    df = _residual_df(table, s.n_cluster_covariates)
    k = len(table)
    w = table["size"].to_numpy(float) if weights == "weighted" else np.ones(k)
    treat = table["treated"].to_numpy(float)
    names, est, se = ["difference"], [], []
    b, e = _two_group_t(table["diff_residual"].to_numpy(float), treat, w)
    est.append(b)
    se.append(e)
    notes: list[str] = []
    if s.kind != "mean":
        table["log_ratio_value"], notes = _log_ratio_values(table, bool(covariates), cluster)
        b, e = _two_group_t(table["log_ratio_value"].to_numpy(float), treat, w)
        names.append("log_ratio")
        est.append(b)
        se.append(e)
    cov = np.full((len(names), len(names)), np.nan)
    np.fill_diagonal(cov, np.square(se))
    return CRTResult(
        model="cluster_level",
        formula=f"{outcome} ~ {arm}" + "".join(f" + {c}" for c in covariates),
        param_names=tuple(names),
        param_values=np.array(est),
        cov_values=cov,
        df_values=np.full(len(names), df),
        df_method="cluster-level t",
        cov_type=weights,
        nobs=int(len(used)),
        n_clusters=k,
        family=_FAMILY[s.kind],
        link="identity",
        warnings=tuple(notes),
        details=ClusterLevelDetails(
            n_excluded=int((~complete).sum()),
            kind=s.kind,
            adjusted_for=covariates,
            n_cluster_covariates=s.n_cluster_covariates,
            clusters_frame=table,
        ),
        spec=ModelSpec(
            fitter="cluster_level",
            formula=f"{outcome} ~ {arm}" + "".join(f" + {c}" for c in covariates),
            cluster=cluster, family=_FAMILY[s.kind], exposure=exposure,
            options={"outcome": outcome, "arm": arm, "covariates": covariates,
                     "weights": weights, "treated": treated},
        ),
    )

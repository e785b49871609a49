"""Participant-average and cluster-average effects of a binary outcome, and their gap.

Model-robust standardisation (Li, Tong, Fang, Cheng, Kahan and Wang 2025): a working
logistic regression of the outcome on the arm and covariates (fitted to every row,
ignoring clustering) predicts each participant's risk under each arm; cluster means of
the predictions, augmented by the observed cluster mean in the arm the cluster
received, are averaged over clusters (cluster-average) or over participants
(participant-average). The variance is the leave-one-cluster-out jackknife with t on
``G - 2`` df. Without covariates the estimates are the mean of the cluster proportions
(cluster-average) and the pooled proportion (participant-average) in each arm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from crtstats.exceptions import ConvergenceWarning, ModelSpecificationError
from crtstats.models._checks import check_rank
from crtstats.models._cluster_data import (
    check_arguments,
    check_outcome_values,
    cluster_table,
    complete_rows,
    treatment_indicator,
)
from crtstats.models._design import build_design
from crtstats.models._details import FitDetails, ModelSpec
from crtstats.models._estimand import Estimand, Population
from crtstats.models._result import CRTResult
from crtstats.models._warn import WarningLog

__all__ = ["EFFECT_TERMS", "EstimandsResult", "estimands"]

_FITTER = "estimands"
#: The three effect measures of every population, in the order of the parameters.
EFFECT_TERMS = ("risk_difference", "log_risk_ratio", "log_odds_ratio")
_MAX_ITER = 100
_TOL = 1e-13


@dataclass(frozen=True)
class EstimandsResult:
    """Both estimands of a binary outcome, and the informative-cluster-size contrast.

    Attributes
    ----------
    participant, cluster
        ``CRTResult`` with terms :data:`EFFECT_TERMS` (risk difference, log risk ratio,
        log odds ratio), the jackknife covariance and t on ``G - 2`` df; ``estimand``
        says the population.
    difference
        Cluster-average minus participant-average, on the same three terms: the
        informative-cluster-size check.
    risks
        The standardised risk of each arm in each population (columns
        ``population``, ``arm``, ``risk``).
    clusters
        One row per cluster: ``cluster``, ``arm``, ``size``, ``observed`` (the cluster
        proportion) and ``treated``.
    """

    participant: CRTResult
    cluster: CRTResult
    difference: CRTResult
    risks: pd.DataFrame
    clusters: pd.DataFrame

    def to_frame(self, level: float = 0.95) -> pd.DataFrame:
        """All three results stacked, with a ``population`` column."""
        frames = []
        for name, res in (("participant-average", self.participant),
                          ("cluster-average", self.cluster),
                          ("cluster minus participant", self.difference)):
            frames.append(res.to_frame(level).assign(population=name))
        return pd.concat(frames, ignore_index=True)


def _logistic(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, bool]:
    """Maximum likelihood logistic regression by Newton steps (least-squares solves, so
    aliased columns get the minimum-norm solution and the fitted values stay unique)."""
    beta = np.zeros(X.shape[1])
    for _ in range(_MAX_ITER):
        mu = special.expit(X @ beta)
        w = np.maximum(mu * (1.0 - mu), 1e-300)
        sw = np.sqrt(w)
        step = np.linalg.lstsq(X * sw[:, None], (y - mu) / sw, rcond=None)[0]
        beta = beta + step
        if np.max(np.abs(step) / (1.0 + np.abs(beta))) < _TOL:
            return beta, True
    return beta, False


def _measures(r1: float, r0: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.array([r1 - r0, np.log(r1 / r0),
                         np.log(r1 / (1.0 - r1)) - np.log(r0 / (1.0 - r0))])


def _point(X: np.ndarray, y: np.ndarray, groups: np.ndarray, treated: np.ndarray,
           arm_col: int) -> tuple[np.ndarray, bool]:
    """Risks (participant 1, 0; cluster 1, 0) and the nine effects of one data set."""
    beta, converged = _logistic(X, y)
    x1, x0 = X.copy(), X.copy()
    x1[:, arm_col], x0[:, arm_col] = 1.0, 0.0
    g = int(groups.max()) + 1
    n = np.bincount(groups, minlength=g).astype(float)
    keep = n > 0
    ybar = np.bincount(groups, weights=y, minlength=g)[keep] / n[keep]
    eta1 = np.bincount(groups, weights=special.expit(x1 @ beta), minlength=g)[keep] / n[keep]
    eta0 = np.bincount(groups, weights=special.expit(x0 @ beta), minlength=g)[keep] / n[keep]
    a, n = treated[keep], n[keep]
    pi = a.mean()
    mu1 = a / pi * (ybar - eta1) + eta1
    mu0 = (1.0 - a) / (1.0 - pi) * (ybar - eta0) + eta0
    risks = np.array([n @ mu1 / n.sum(), n @ mu0 / n.sum(), mu1.mean(), mu0.mean()])
    part, clus = _measures(risks[0], risks[1]), _measures(risks[2], risks[3])
    return np.concatenate([risks, part, clus, clus - part]), converged


def _check_risks(risks: np.ndarray, outcome: str) -> None:
    if np.any(risks <= 0.0) or np.any(risks >= 1.0):
        raise ModelSpecificationError(
            f"{_FITTER}: a standardised risk of {outcome!r} is {risks.min()!r} or "
            f"{risks.max()!r}, at the edge of (0, 1): an arm has no events (or only "
            "events), so risk and odds ratios are not identified. Report the counts and "
            "the risk difference from cluster_level."
        )


def _result(name: str, values: np.ndarray, cov: np.ndarray, g: int, nobs: int,
            estimand: Estimand, spec: ModelSpec, log: WarningLog, n_excluded: int
            ) -> CRTResult:
    return CRTResult(
        model=_FITTER, formula=spec.formula, param_names=EFFECT_TERMS,
        param_values=values, cov_values=cov, df_values=np.full(3, float(g - 2)),
        df_method="jackknife t (G - 2)", cov_type="jackknife", nobs=nobs, n_clusters=g,
        family="binomial", link="identity", warnings=log.records,
        details=FitDetails(n_excluded=n_excluded, note=f"{name}; " + (
            "rows with a missing value left out." if n_excluded else "no rows excluded.")),
        spec=spec, estimand_record=estimand,
    )


def _design(used: pd.DataFrame, outcome: str, arm_values: np.ndarray, cluster: str,
            covariates: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    frame = used.assign(_treated=arm_values)
    formula = f"{outcome} ~ _treated" + "".join(f" + {c}" for c in covariates)
    design = build_design(formula, frame, cluster=cluster)
    check_rank(design.X, design.names, formula=formula.replace("_treated", "arm"))
    return design.X, design.y, design.groups, design.names.index("_treated")


def estimands(
    data: pd.DataFrame,
    *,
    outcome: str,
    arm: str,
    cluster: str,
    covariates: Sequence[str] = (),
    treated: Any = None,
) -> EstimandsResult:
    """Participant- and cluster-average risk difference, risk ratio and odds ratio.

    Parameters
    ----------
    data
        One row per participant.
    outcome
        The 0/1 outcome column.
    arm, cluster
        Columns of the allocated arm (constant within clusters) and of the clusters.
    covariates
        Columns of the working logistic model (besides the arm), e.g. the stratum and
        a baseline value; empty for the unadjusted estimates.
    treated
        The arm value of the intervention; by default ``"intervention"`` (or 1).

    Returns
    -------
    EstimandsResult
        ``participant`` and ``cluster`` results with terms ``risk_difference``,
        ``log_risk_ratio`` and ``log_odds_ratio``, ``difference`` (cluster-average
        minus participant-average, the informative-cluster-size check), the
        standardised ``risks`` and the per-cluster summaries.

    Raises
    ------
    InvalidParameterError
        On a non-column argument.
    MissingColumnError
        If a column is not in ``data``.
    ModelSpecificationError
        On a missing arm, an outcome that is not 0/1, an arm varying within a
        cluster, fewer than two clusters per arm (no jackknife or df left), a
        rank-deficient working model, or a standardised risk of 0 or 1 (no ratio).

    Warns
    -----
    ExcludedRowsWarning
        Rows with a missing outcome, covariate or cluster are left out.
    ConvergenceWarning
        If the working model did not converge on the data or a jackknife replicate.

    Notes
    -----
    For cluster i of size ``n_i`` in arm ``A_i`` with observed proportion
    ``Ybar_i``, and ``eta_ai`` the mean over its participants of the working model's
    predicted risk with the arm set to a, with ``pi`` the proportion of clusters
    allocated to the intervention,

    ``mu_1i = A_i / pi (Ybar_i - eta_1i) + eta_1i``,
    ``mu_0i = (1 - A_i) / (1 - pi) (Ybar_i - eta_0i) + eta_0i``;

    the cluster-average risk of arm a is ``mean_i mu_ai`` and the participant-average
    ``sum_i n_i mu_ai / sum_i n_i``. Effects: ``r_1 - r_0``, ``log(r_1 / r_0)`` and
    ``logit(r_1) - logit(r_0)``. The estimator is consistent for either estimand
    whether or not the working model is right, as randomisation makes the
    augmentation terms mean zero. ``pi`` is re-estimated in each replicate. With
    ``theta_(-i)`` the estimates without cluster i and ``theta_.`` their mean, the
    jackknife covariance is ``(G - 1) / G sum_i (theta_(-i) - theta_.)(theta_(-i) -
    theta_.)'`` and tests are t on ``G - 2`` df. Intervals for the ratios are
    exponentiated from the log scale.

    MRStdCRT's ``MRStdCRT_fit`` holds ``pi`` at its full-data value in the replicates
    and uses ``G - 1`` df; crtstats re-estimates ``pi`` (so that without covariates
    the estimates are exactly the arm means of the cluster proportions and of the
    participants) and uses ``G - 2``, the df of a two-arm cluster-level t-test.

    References
    ----------
    Li F, Tong J, Fang X, Cheng C, Kahan BC, Wang B (2025). Model-robust
    standardization in cluster-randomized trials. Statistics in Medicine.
    doi:10.1002/sim.70270.
    Kahan BC, Li F, Copas AJ, Harhay MO (2023). Estimands in cluster-randomized trials:
    choosing analyses that answer the right question. Int J Epidemiol 52:107-118.

    Examples
    --------
    >>> import crtstats
    >>> from crtstats.models import estimands
    >>> trial = crtstats.datasets.load_example()
    >>> fu = trial.admissions[trial.admissions["period"] == "follow_up"].merge(
    ...     trial.teams, on="team_id")
    >>> est = estimands(fu, outcome="admitted", arm="arm", cluster="team_id")
    >>> est.cluster.estimand.population, int(est.cluster.df.iloc[0])
    ('cluster-average', 23)

    R: ``MRStdCRT::MRStdCRT_fit(admitted ~ ..., method = "GEE", corstr =
    "independence", family = binomial, scale = "RD")`` (with the differences noted).
    """
    covariates = check_arguments(_FITTER, data, {"outcome": outcome, "arm": arm,
                                                 "cluster": cluster},
                                 covariates=covariates)
    log = WarningLog()
    rows = complete_rows(data, fitter=_FITTER, design=[arm], cluster=cluster,
                         measured=[outcome, *covariates], log=log)
    used = rows.data
    check_outcome_values(used, outcome, "binary", fitter=_FITTER)
    table = cluster_table(used, arm=arm, cluster=cluster)
    a_cluster = treatment_indicator(table[arm], treated)
    if min(a_cluster.sum(), (1 - a_cluster).sum()) < 2:
        raise ModelSpecificationError(
            f"{_FITTER}: each arm needs at least two clusters (a jackknife and G - 2 df); "
            f"got {int(a_cluster.sum())} intervention and {int((1 - a_cluster).sum())} "
            "control cluster(s)."
        )
    a_row = treatment_indicator(used[arm], treated)
    X, y, groups, arm_col = _design(used, outcome, a_row, cluster, covariates)
    g = int(groups.max()) + 1
    a_code = np.bincount(groups, weights=a_row, minlength=g) / np.bincount(groups)
    full, converged = _point(X, y, groups, a_code, arm_col)
    _check_risks(full[:4], outcome)
    reps = np.empty((g, full.size))
    failed = 0 if converged else 1
    for i in range(g):
        keep = groups != i
        codes = np.searchsorted(np.unique(groups[keep]), groups[keep])
        reps[i], ok = _point(X[keep], y[keep], codes, np.delete(a_code, i), arm_col)
        failed += not ok
    if failed:
        log.warn(f"{_FITTER}: the working logistic model did not converge in {failed} of "
                 f"{g + 1} fits (the data and the jackknife replicates); a covariate may "
                 "separate the outcome. Use fewer covariates.", ConvergenceWarning)
    if not np.all(np.isfinite(reps)):
        raise ModelSpecificationError(
            f"{_FITTER}: leaving out a cluster leaves an arm of {outcome!r} with no events "
            "(or only events), so the jackknife of the risk and odds ratios is not finite. "
            "Report the risk difference from cluster_level and the counts."
        )
    dev = reps - reps.mean(axis=0)
    cov = (g - 1) / g * dev.T @ dev
    formula = f"{outcome} ~ {arm}" + "".join(f" + {c}" for c in covariates)
    spec = ModelSpec(fitter=_FITTER, formula=formula, cluster=cluster, family="binomial",
                     options={"outcome": outcome, "arm": arm, "covariates": covariates,
                              "treated": treated})
    adjusted = (f"standardised over {', '.join(covariates)} (working logistic model)"
                if covariates else "unadjusted")
    out: dict[str, CRTResult] = {}
    for k, (name, population, note) in enumerate((
            ("participant", "participant-average", "each participant counts once"),
            ("cluster", "cluster-average", "each cluster counts once"),
            ("difference", "cluster-average", "cluster-average minus participant-average"),
    )):
        sl = slice(4 + 3 * k, 7 + 3 * k)
        pop: Population = population  # type: ignore[assignment]
        est = Estimand(population=pop, measure="risk difference", conditioning="marginal",
                       note=f"{note}; {adjusted}")
        out[name] = _result(est.note, full[sl], cov[sl, sl], g, len(used), est, spec, log,
                            rows.n_excluded)
    risks = pd.DataFrame({"population": ["participant-average"] * 2 + ["cluster-average"] * 2,
                          "arm": ["intervention", "control"] * 2, "risk": full[:4]})
    size = np.bincount(groups).astype(float)
    clusters = pd.DataFrame({"cluster": table[cluster].to_numpy(), "arm": table[arm].to_numpy(),
                             "size": size, "observed": np.bincount(groups, weights=y) / size,
                             "treated": a_code})
    return EstimandsResult(participant=out["participant"], cluster=out["cluster"],
                           difference=out["difference"], risks=risks, clusters=clusters)

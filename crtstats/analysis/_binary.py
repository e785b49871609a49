"""The person-level analyses of a 0/1 outcome shared by the trial analyses.

:func:`crtstats.analyse_admissions` (admitted, readmitted) and
:func:`crtstats.analyse_questionnaire` (questionnaire caseness) report the same set for
a binary outcome of the follow-up participants, adjusted for stratum and a team-level
baseline proportion ``covariate``:

* primary: random-intercept logistic GLMM, Laplace REML, between-within df (odds ratio);
* sensitivity: GEE (exchangeable, independence if the correlation is negative;
  Kauermann-Carroll), the two-stage cluster-level risk ratio and risk difference and
  the stratified randomisation test of the cluster-level ratio;
* both estimands (participant- and cluster-average) as risk difference, risk ratio and
  odds ratio: independence GEE unweighted and weighted 1 / size (Mancl-DeRouen), and
  model-robust standardisation with the leave-one-team-out jackknife; the
  informative-cluster-size check in the notes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from crtstats.analysis._effects import effect_row, randomisation_row
from crtstats.models import (
    ClusterLevelDetails,
    CRTResult,
    GeeDetails,
    ICCResult,
    cluster_level,
    estimands,
    gee,
    glmm,
    icc,
    informative_size_test,
    permutation_test,
)

__all__ = ["ARM_TERM", "ESTIMAND", "Collector", "binary_analyses", "binary_glmm",
           "ics_limits", "randomisation_test_row"]

ARM_TERM = "arm[T.intervention]"
ESTIMAND = "intervention vs control, follow-up"


@dataclass
class Collector:
    """Effects rows, fits and notes gathered by an analysis."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    results: dict[str, CRTResult] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add_fit(self, outcome: str, analysis: str, role: str, scale: str, res: CRTResult,
                term: str, icc_res: ICCResult | None = None) -> None:
        self.rows.append(effect_row(
            res, {term: 1.0}, outcome=outcome, analysis=analysis, role=role,
            estimand=ESTIMAND, scale=scale, icc=icc_res if icc_res is not None else np.nan))
        self.results[f"{outcome}: {analysis}" + (f" ({scale})" if res.model ==
                                                 "cluster_level" else "")] = res
        self.notes += [f"{outcome}, {analysis}: {m}" for m in res.warnings]



def binary_glmm(formula: str, frame: pd.DataFrame) -> CRTResult:
    """The primary GLMM of a 0/1 outcome: the one place its estimation options are set."""
    return glmm(formula, frame, cluster="team_id", family="binomial", method="laplace-reml")


def binary_analyses(frame: pd.DataFrame, outcome: str, out: Collector,
                    n_resamples: int, seed: int | None, *,
                    covariate: str = "pre_prop") -> None:
    """Every analysis of the 0/1 ``outcome`` of ``frame``, appended to ``out``.

    ``frame`` has one row per follow-up participant with ``team_id``, ``arm``
    (categorical, control first), ``stratum``, ``outcome`` (0/1 floats) and the team's
    baseline proportion ``covariate`` (NaN for a team without one: such teams are left
    out of the adjusted analyses and of the estimands' adjusted rows).
    """
    formula = f"{outcome} ~ arm + stratum + {covariate}"
    icc_res = icc(frame, outcome=outcome, cluster="team_id", method="smith")
    out.add_fit(outcome, "GLMM (between-within)", "primary", "odds ratio",
                binary_glmm(formula, frame), ARM_TERM, icc_res)
    label, res = _gee_fit(formula, frame, outcome, out.notes)
    out.add_fit(outcome, label, "sensitivity", "odds ratio", res, ARM_TERM, icc_res)
    adjusted = frame.dropna(subset=[covariate])
    fits = {scale: cluster_level(adjusted, outcome=outcome, arm="arm", cluster="team_id",
                                 outcome_type="binary", scale=scale,
                                 covariates=["stratum", covariate])
            for scale in ("ratio", "difference")}
    for (term, label), cl in zip((("log_ratio", "risk ratio"),
                                  ("difference", "risk difference")), fits.values(), strict=True):
        out.add_fit(outcome, "cluster-level two-stage", "sensitivity", label, cl, term, icc_res)
    randomisation_test_row(fits["ratio"], adjusted, outcome, "risk ratio", out, n_resamples,
                           seed, icc_res)
    _estimand_analyses(frame, adjusted, outcome, out, n_resamples, seed, icc_res,
                       covariate=covariate)


_MEASURE_TERMS = (("risk difference", "risk_difference"), ("risk ratio", "log_risk_ratio"),
                  ("odds ratio", "log_odds_ratio"))
_GEE_SCALES: tuple[tuple[str, Literal["gaussian", "poisson", "binomial"]], ...] = (
    ("risk difference", "gaussian"), ("risk ratio", "poisson"), ("odds ratio", "binomial"))
_GEE_WEIGHTS: tuple[tuple[str, Literal["none", "inverse-size"]], ...] = (
    ("participant-average: independence GEE", "none"),
    ("cluster-average: GEE weighted 1/size", "inverse-size"))


def _estimand_analyses(frame: pd.DataFrame, adjusted: pd.DataFrame, outcome: str,
                       out: Collector, n_resamples: int, seed: int | None,
                       icc_res: ICCResult, *, covariate: str) -> None:
    """Participant- and cluster-average effects, and the informative-size check."""
    for label, weights in _GEE_WEIGHTS:
        for scale, family in _GEE_SCALES:
            res = gee(f"{outcome} ~ arm", frame, cluster="team_id", family=family,
                      cov_struct="independence", cov_type="mancl-derouen", weights=weights)
            analysis = f"{label} (Mancl-DeRouen)"
            out.rows.append(effect_row(
                res, {ARM_TERM: 1.0}, outcome=outcome, analysis=analysis,
                role="sensitivity", estimand=ESTIMAND, scale=scale, icc=icc_res))
            out.results[f"{outcome}: {analysis} ({scale})"] = res
    std = estimands(adjusted, outcome=outcome, arm="arm", cluster="team_id",
                    covariates=["stratum", covariate])
    out.notes += [f"{outcome}, standardised estimands: {m}" for m in std.participant.warnings]
    for name, res in (("participant-average", std.participant),
                      ("cluster-average", std.cluster)):
        label = f"{name}: standardised (jackknife)"
        for scale, term in _MEASURE_TERMS:
            out.rows.append(effect_row(res, {term: 1.0}, outcome=outcome, analysis=label,
                                       role="sensitivity", estimand=ESTIMAND, scale=scale,
                                       icc=icc_res))
        out.results[f"{outcome}: {label}"] = res
    out.results[f"{outcome}: cluster-average: standardised (jackknife), minus "
                "participant-average (informative cluster size)"] = std.difference
    _ics_note(std.difference, adjusted, outcome, out, n_resamples, seed)


def _ics_note(diff: CRTResult, data: pd.DataFrame, outcome: str, out: Collector,
              n_resamples: int, seed: int | None) -> None:
    test = informative_size_test(data, outcome=outcome, arm="arm", cluster="team_id",
                                 strata="stratum", n_resamples=n_resamples, seed=seed)
    k = diff.param_names.index("risk_difference")
    low, high = (float(v) for v in diff.conf_int().to_numpy()[k])
    g = int(diff.n_clusters or 0)
    draws = "exact" if test.exact else f"Monte Carlo, {test.n_resamples} draws"
    out.notes.append(
        f"{outcome}, informative cluster size: the cluster-average minus "
        f"participant-average risk difference (standardised) is "
        f"{float(diff.param_values[k]):.4f} (95% CI {low:.4f} to {high:.4f}, jackknife t "
        f"on {g - 2} df); unadjusted, {test.observed:.4f}, randomisation p = "
        f"{test.pvalue:.3f} ({draws}, within strata). " + ics_limits(g))


def ics_limits(n_clusters: int) -> str:
    """What the informative-cluster-size check can and cannot show with G clusters."""
    return (
        f"With {n_clusters} teams this check has little power: a clear gap shows that "
        "the two estimands differ (larger teams respond differently), so the estimand "
        "must be chosen, and a mixed model or exchangeable GEE, which weights teams in "
        "between, answers neither; a small or non-significant gap does not show that "
        "they agree. The randomisation test is exact for the null of no effect in any "
        "team, not for 'no informative size' when the programme has an effect."
    )


def _gee_fit(formula: str, frame: pd.DataFrame, outcome: str, notes: list[str]
             ) -> tuple[str, CRTResult]:
    """Exchangeable GEE, or independence when the exchangeable correlation is negative."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = gee(formula, frame, cluster="team_id", family="binomial")
    alpha = res.details.working_correlation if isinstance(res.details, GeeDetails) else 0.0
    if alpha >= 0:
        for w in caught:
            warnings.warn(w.message, stacklevel=3)
        return "GEE exchangeable (Kauermann-Carroll)", res
    notes.append(
        f"{outcome}: the exchangeable working correlation was estimated as {alpha:.4g}; a "
        "negative value is taken as zero, so the GEE uses the independence working "
        "correlation."
    )
    res = gee(formula, frame, cluster="team_id", family="binomial", cov_struct="independence")
    return "GEE independence (Kauermann-Carroll)", res


def randomisation_test_row(cl: CRTResult, data: pd.DataFrame, outcome: str, scale: str,
                       out: Collector, n_resamples: int, seed: int | None,
                       icc_res: ICCResult | None = None) -> None:
    """Stratified randomisation test of the two-stage cluster-level log ratio."""
    if not isinstance(cl.details, ClusterLevelDetails):
        raise TypeError(f"expected a cluster-level result; got model {cl.model!r}.")
    clusters = cl.details.clusters
    teams = data.groupby("team_id", sort=False)["stratum"].first()
    frame = clusters[["team_id", "arm", "value"]].assign(
        stratum=clusters["team_id"].map(teams).to_numpy())
    perm = permutation_test(frame, statistic="mean_difference", outcome="value", arm="arm",
                            cluster="team_id", strata="stratum", n_resamples=n_resamples,
                            seed=seed)
    out.notes += [f"{outcome}, randomisation test: {m}" for m in perm.warnings]
    out.rows.append(randomisation_row(
        perm, outcome=outcome, analysis="randomisation test (stratified)", role="sensitivity",
        estimand=ESTIMAND, scale=scale, n_clusters=int(cl.n_clusters or 0), nobs=cl.nobs,
        icc=icc_res))
    if not perm.exact:
        out.notes.append(f"{outcome}, randomisation test: p from {perm.n_resamples} random "
                         f"allocations (Monte Carlo SE {perm.mcse:.4f}).")

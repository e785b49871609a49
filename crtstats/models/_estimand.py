"""What an effect estimates: population, summary measure and conditioning.

A cluster trial can ask two questions (Kahan, Li, Copas and Harhay 2023): the effect
averaged over participants (participant-average) and the effect averaged over clusters
(cluster-average). They part when cluster size is informative. Each fitter's arm
coefficient answers one of them, or, when the fit weights clusters by an efficiency
weight (a random-intercept model, an exchangeable GEE), neither exactly. The measure
(difference, risk or rate ratio, odds ratio) and whether the effect is conditional on
the cluster (cluster-specific) or marginal complete the description.
:func:`estimand_of` derives the record from a fit's own specification.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal, get_args

from crtstats._options import check_option
from crtstats.models._details import ClusterLevelDetails, GeeDetails

if TYPE_CHECKING:
    from crtstats.models._result import CRTResult

__all__ = ["CONDITIONINGS", "MEASURES", "POPULATIONS", "Conditioning", "Estimand", "Measure",
           "Population", "estimand_of", "measure_of_scale"]

Population = Literal["participant-average", "cluster-average", "efficiency-weighted"]
Measure = Literal["mean difference", "risk difference", "risk ratio", "odds ratio",
                  "rate ratio", "rate difference"]
Conditioning = Literal["conditional", "marginal"]
POPULATIONS: tuple[Population, ...] = get_args(Population)
MEASURES: tuple[Measure, ...] = get_args(Measure)
CONDITIONINGS: tuple[Conditioning, ...] = get_args(Conditioning)

_SCALE_MEASURE: dict[str, Measure] = {
    "difference": "mean difference", "mean difference": "mean difference",
    "risk difference": "risk difference", "risk ratio": "risk ratio",
    "odds ratio": "odds ratio", "rate ratio": "rate ratio",
    "rate difference": "rate difference",
}

_EFFICIENCY = ("it weights each cluster by the precision of its mean, "
               "1 / (cluster variance + residual variance / size), which lies between "
               "equal weights (cluster-average) and weights proportional to size "
               "(participant-average); when cluster size is informative it estimates "
               "neither exactly")


@dataclass(frozen=True, kw_only=True)
class Estimand:
    """The estimand of an effect.

    Attributes
    ----------
    population
        ``"participant-average"`` (every participant counts once),
        ``"cluster-average"`` (every cluster counts once) or ``"efficiency-weighted"``
        (clusters weighted by the precision of their mean: neither exactly).
    measure
        ``"mean difference"``, ``"risk difference"``, ``"risk ratio"``,
        ``"odds ratio"``, ``"rate ratio"`` or ``"rate difference"``.
    conditioning
        ``"conditional"`` (cluster-specific: the effect within a cluster, given its
        random effect) or ``"marginal"`` (population-averaged).
    note
        Why, in a sentence.

    Examples
    --------
    >>> e = Estimand(population="cluster-average", measure="risk ratio",
    ...              conditioning="marginal")
    >>> e.label
    'cluster-average marginal risk ratio'
    """

    population: Population
    measure: Measure
    conditioning: Conditioning
    note: str = ""

    def __post_init__(self) -> None:
        check_option("population", self.population, POPULATIONS)
        check_option("measure", self.measure, MEASURES)
        check_option("conditioning", self.conditioning, CONDITIONINGS)

    @property
    def label(self) -> str:
        """``population conditioning measure`` in words."""
        return f"{self.population} {self.conditioning} {self.measure}"

    def with_measure(self, measure: str) -> Estimand:
        """The same estimand on another measure (a row's reporting scale)."""
        return replace(self, measure=measure_of_scale(measure, self.measure))

    def as_dict(self) -> dict[str, str]:
        """The three effects-row columns."""
        return {"population": self.population, "measure": self.measure,
                "conditioning": self.conditioning}


def measure_of_scale(scale: str, default: Measure = "mean difference") -> Measure:
    """The measure of an effects-row ``scale`` (``"difference"`` is a mean difference)."""
    return _SCALE_MEASURE.get(scale, default)


def _link_measure(family: str, link: str) -> Measure:
    if link == "logit":
        return "odds ratio"
    if link == "log":
        return "risk ratio" if family == "binomial" else "rate ratio"
    return "risk difference" if family == "binomial" else "mean difference"


def _cluster_level(res: CRTResult, details: ClusterLevelDetails) -> Estimand:
    weights = res.cov_type
    outcome_type = details.outcome_type or "continuous"
    scale = details.effect_scale or "difference"
    measures: dict[tuple[str, str], Measure] = {
        ("binary", "difference"): "risk difference", ("binary", "ratio"): "risk ratio",
        ("count", "difference"): "rate difference", ("count", "ratio"): "rate ratio"}
    measure = measures.get((outcome_type, scale), "mean difference")
    if weights == "weighted":
        return Estimand(population="participant-average", measure=measure,
                        conditioning="marginal",
                        note="cluster summaries weighted by cluster size (exposure for "
                        "rates): each participant counts once")
    geometric = " (of geometric mean cluster summaries)" if scale == "ratio" else ""
    return Estimand(population="cluster-average", measure=measure, conditioning="marginal",
                    note=f"unweighted cluster summaries: each cluster counts once{geometric}")


def _gee(res: CRTResult, details: GeeDetails) -> Estimand:
    measure = _link_measure(res.family, res.link)
    options = res.spec.options if res.spec is not None else {}
    if details.cov_struct == "independence":
        if options.get("weights") == "inverse-size":
            return Estimand(population="cluster-average", measure=measure,
                            conditioning="marginal",
                            note="independence GEE weighted by 1 / cluster size: each "
                            "cluster counts once")
        return Estimand(population="participant-average", measure=measure,
                        conditioning="marginal",
                        note="independence GEE: each participant counts once")
    return Estimand(population="efficiency-weighted", measure=measure, conditioning="marginal",
                    note="exchangeable GEE: marginal, but " + _EFFICIENCY.replace(
                        "cluster variance + residual variance", "alpha + (1 - alpha)"))


def estimand_of(res: CRTResult) -> Estimand:
    """The estimand of the arm coefficient of ``res``, from its fitter and options.

    * ``lmm``: conditional mean difference, efficiency-weighted (for an identity link
      the conditional and marginal effects coincide);
    * ``glmm``: conditional (cluster-specific) odds or rate ratio, efficiency-weighted;
    * ``gee``: marginal; independence is participant-average (cluster-average when
      weighted by 1 / size), exchangeable efficiency-weighted;
    * ``cluster_level``: marginal; unweighted is cluster-average, size-weighted
      participant-average;
    * ``ols``: marginal; participant-average on individual rows, cluster-average on one
      row per cluster;
    * ``negative_binomial`` (team counts): marginal rate ratio, efficiency-weighted;
    * ``panel_ols`` (team panel): cluster-average marginal mean difference.
    """
    details = res.details
    if isinstance(details, ClusterLevelDetails):
        return _cluster_level(res, details)
    if isinstance(details, GeeDetails):
        return _gee(res, details)
    measure = _link_measure(res.family, res.link)
    if res.model == "lmm":
        return Estimand(population="efficiency-weighted", measure=measure,
                        conditioning="conditional",
                        note="random-intercept LMM coefficient: " + _EFFICIENCY
                        + "; with an identity link it equals the marginal difference")
    if res.model == "glmm":
        return Estimand(population="efficiency-weighted", measure=measure,
                        conditioning="conditional",
                        note="GLMM coefficient: the effect within a cluster (given its "
                        "random effect), not the population-averaged one; " + _EFFICIENCY)
    if res.model == "negative_binomial":
        return Estimand(population="efficiency-weighted", measure=measure,
                        conditioning="marginal",
                        note="team-level negative binomial: teams weighted between "
                        "equally (large overdispersion) and by exposure (Poisson)")
    one_per_cluster = res.n_clusters is not None and res.nobs == res.n_clusters
    if res.model == "panel_ols" or one_per_cluster:
        return Estimand(population="cluster-average", measure=measure,
                        conditioning="marginal",
                        note="one row per cluster (and review): each cluster counts once")
    return Estimand(population="participant-average", measure=measure,
                    conditioning="marginal",
                    note="unweighted regression on individual rows: each participant "
                    "counts once")

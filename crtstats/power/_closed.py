"""Closed-form power and sample size for two-arm cluster-randomised trials.

Each function solves for the power or for the number of clusters per arm (whichever of
``power`` and ``clusters_per_arm`` is None), with the test on the df of the analysis that
the formula describes (a t test of cluster-level summaries), and returns a
:class:`PowerResult`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from crtstats._options import check_option
from crtstats.exceptions import InfeasibleDesignError, InvalidParameterError, _format_value
from crtstats.models import design_effect
from crtstats.power._closed_core import (
    ClusterCounts,
    PowerResult,
    Test,
    check_open_unit,
    check_positive,
    solve,
)

__all__ = [
    "ClusterSizeResult",
    "PowerResult",
    "ancova",
    "binary",
    "cluster_size_needed",
    "continuous",
    "rates",
]

CvMethod = Literal["taylor", "eldridge"]
CV_METHODS: tuple[CvMethod, ...] = ("taylor", "eldridge")
AncovaAnalysis = Literal["ancova", "change"]
ANCOVA_ANALYSES: tuple[AncovaAnalysis, ...] = ("ancova", "change")


def _test_text(test: str, df: float, strict: bool) -> str:
    tails = "both tails" if strict else "upper tail"
    if test == "t":
        return f"t test on {df:g} df, power from the noncentral t ({tails})"
    return f"normal approximation (z), {tails}"


def _variance_inflation(
    cluster_size: float | Sequence[float], icc: float, cv: float, cv_method: str
) -> tuple[float, float, str]:
    """(mean cluster size, variance inflation factor, its description)."""
    check_option("cv_method", cv_method, CV_METHODS)
    check_positive("cv", cv, strict=False)
    if isinstance(cluster_size, Sequence):
        sizes = np.asarray(cluster_size, dtype=float)
        if sizes.size < 1 or not np.all(np.isfinite(sizes)) or np.any(sizes < 1):
            raise InvalidParameterError(
                f"cluster_size must be sizes >= 1; got {_format_value(cluster_size)}."
            )
        if cv != 0:
            raise InvalidParameterError(
                "give either cluster_size as a list of sizes (their efficiency is computed "
                f"exactly) or a mean size with cv, not both; got cv={cv:g}."
            )
        m = float(sizes.mean())
        vif = m / float(np.mean(sizes / (1.0 + (sizes - 1.0) * icc)))
        return m, vif, f"exact efficiency of {sizes.size} cluster sizes (mean {m:g})"
    m = check_positive("cluster_size", cluster_size)
    deff = 1.0 + (m - 1.0) * icc
    if cv == 0:
        return m, deff, f"1 + (m - 1) ICC with m = {m:g}"
    if cv_method == "eldridge":
        return m, design_effect(m, cv, icc), (
            f"1 + ((CV^2 + 1) m - 1) ICC with m = {m:g}, CV = {cv:g} (Eldridge)")
    lam = m * icc / deff
    denom = 1.0 - cv**2 * lam * (1.0 - lam)
    if denom <= 0:
        raise InvalidParameterError(
            f"cv = {cv:g} is outside the range of the Taylor approximation at m = {m:g}, "
            f"ICC = {icc:g}; use cv_method='eldridge' or give the cluster sizes."
        )
    return m, deff / denom, (
        f"(1 + (m - 1) ICC) / RE with m = {m:g}, CV = {cv:g} (van Breukelen Taylor RE)")


def continuous(
    *,
    clusters_per_arm: ClusterCounts | None = None,
    cluster_size: float | Sequence[float],
    effect: float,
    icc: float,
    sd: float = 1.0,
    cv: float = 0.0,
    cv_method: CvMethod = "taylor",
    alpha: float = 0.05,
    power: float | None = None,
    allocation_ratio: float = 1.0,
    test: Test = "t",
    strict: bool = False,
) -> PowerResult:
    """Power or clusters per arm for a difference in means.

    Parameters
    ----------
    clusters_per_arm : float or (float, float), optional
        Clusters in each arm, or (intervention, control) for unequal allocation. None to
        solve for it (then ``power`` is required).
    cluster_size : float or sequence of float
        Mean cluster size ``m``, or the list of one arm's cluster sizes (the relative
        efficiency is then computed exactly and ``cv`` must be 0).
    effect : float
        Difference in means, on the scale of ``sd``.
    icc : float
        Intracluster correlation, in [0, 1).
    sd : float
        Total standard deviation of the outcome (between plus within cluster).
    cv : float
        Coefficient of variation of the cluster sizes.
    cv_method : {"taylor", "eldridge"}
        Variance inflation for unequal sizes: van Breukelen, Candel and Berger's Taylor
        approximation of the relative efficiency (clusterPower's default) or Eldridge,
        Ashby and Kerry's ``1 + ((CV^2 + 1) m - 1) ICC``.
    alpha : float
        Two-sided significance level.
    power : float, optional
        Target power in (alpha, 1), to solve for ``clusters_per_arm``.
    allocation_ratio : float
        Intervention clusters per control cluster when solving (e.g. 1.5 for 15:10).
    test : {"t", "normal"}
        ``"t"`` (default): t on ``G1 + G0 - 2`` df (``2(G - 1)``), the df of the
        cluster-level t test; ``"normal"``: z, which overstates power with few clusters.
    strict : bool
        Add the probability of rejecting in the wrong direction (R's
        ``power.t.test(strict = TRUE)``); the default counts the upper tail only, as
        clusterPower and ``power.t.test`` do.

    Returns
    -------
    PowerResult

    Raises
    ------
    InvalidParameterError
        icc outside [0, 1), alpha outside (0, 1), power outside (alpha, 1), sizes or sd
        not positive, an unknown option, or both/neither of power and clusters_per_arm.

    Notes
    -----
    With ``G1`` and ``G0`` clusters, the variance of the difference in arm means is
    ``sd^2 VIF / m (1/G1 + 1/G0)``, ``VIF = 1 + (m - 1) ICC`` for equal sizes; with
    ``CV > 0`` the Taylor form divides it by ``RE = 1 - CV^2 L (1 - L)``,
    ``L = m ICC / (1 + (m - 1) ICC)``; with a list of sizes ``VIF = m / mean(m_j /
    (1 + (m_j - 1) ICC))``. The power is ``P(T' > t(1 - alpha/2; df))`` for ``T'``
    noncentral t with ``df = G1 + G0 - 2`` and noncentrality ``|effect| / SE``.

    References
    ----------
    Donner A, Klar N (2000). Design and Analysis of Cluster Randomization Trials in
    Health Research. Arnold. van Breukelen GJP, Candel MJJM, Berger MPF (2007). Stat Med
    26:2589-2603. Eldridge SM, Ashby D, Kerry S (2006). Int J Epidemiol 35:1292-1300.

    Examples
    --------
    R: ``clusterPower::cpa.normal(nclusters = 16, nsubjects = 10, d = 1,
    sigma_b_sq = 0.5, vart = 5)`` gives 0.801766.

    >>> from crtstats import power
    >>> res = power.continuous(clusters_per_arm=16, cluster_size=10, effect=1, icc=0.1,
    ...                        sd=5 ** 0.5)
    >>> round(res.power, 6), res.df
    (0.801766, 30.0)
    >>> power.continuous(cluster_size=10, effect=1, icc=0.1, sd=5 ** 0.5,
    ...                  power=0.8).clusters_rounded
    (16, 16)
    """
    icc = check_open_unit("icc", icc, closed_low=True)
    sd = check_positive("sd", sd)
    m, vif, vif_text = _variance_inflation(cluster_size, icc, cv, cv_method)

    def variance(g1: float, g0: float) -> float:
        return sd**2 * vif / m * (1.0 / g1 + 1.0 / g0)

    return solve(
        variance=variance, effect=float(effect), clusters_per_arm=clusters_per_arm,
        allocation_ratio=allocation_ratio, alpha=alpha, power=power, test=test,
        strict=strict, df_lost=2, design_effect=vif,
        assumptions=lambda df: (
            f"Difference in means of {effect:g} (SD {sd:g}), ICC {icc:g}, design effect "
            f"{vif:.4g} = {vif_text}; {_test_text(test, df, strict)}."),
    )


def binary(
    *,
    clusters_per_arm: ClusterCounts | None = None,
    cluster_size: float | Sequence[float],
    p1: float,
    p2: float,
    icc: float,
    cv: float = 0.0,
    cv_method: CvMethod = "taylor",
    alpha: float = 0.05,
    power: float | None = None,
    allocation_ratio: float = 1.0,
    test: Test = "t",
    strict: bool = False,
) -> PowerResult:
    """Power or clusters per arm for a difference in proportions (Donner and Klar).

    The other parameters are as in :func:`continuous`. ``cpa.binary`` applies the
    Eldridge inflation for ``CV > 0``: pass ``cv_method="eldridge"`` to match it.

    Parameters
    ----------
    p1, p2 : float
        Proportions in the intervention and control arms, each in (0, 1).
    icc : float
        Intracluster correlation of the binary outcome, in [0, 1).

    Returns
    -------
    PowerResult

    Raises
    ------
    InvalidParameterError
        p1 or p2 outside (0, 1), and as in :func:`continuous`.

    Notes
    -----
    The variance of the difference in proportions is
    ``VIF / m (p1 (1 - p1) / G1 + p2 (1 - p2) / G0)`` (unpooled), ``VIF`` as in
    :func:`continuous`; t on ``G1 + G0 - 2`` df (the cluster-level t test of cluster
    proportions), power from the noncentral t.

    References
    ----------
    Donner A, Klar N (2000). Design and Analysis of Cluster Randomization Trials in
    Health Research. Arnold.

    Examples
    --------
    R: ``clusterPower::cpa.binary(power = 0.8, nsubjects = 10, p1 = 0.1, p2 = 0.2,
    ICC = 0.1)`` gives 38.26666 clusters per arm (t on 2(G - 1) df), so 39.

    >>> from crtstats import power
    >>> res = power.binary(cluster_size=10, p1=0.1, p2=0.2, icc=0.1, power=0.8)
    >>> round(res.clusters_per_arm[0], 5), res.clusters_rounded
    (38.26666, (39, 39))
    """
    p1 = check_open_unit("p1", p1)
    p2 = check_open_unit("p2", p2)
    icc = check_open_unit("icc", icc, closed_low=True)
    m, vif, vif_text = _variance_inflation(cluster_size, icc, cv, cv_method)

    def variance(g1: float, g0: float) -> float:
        return vif / m * (p1 * (1 - p1) / g1 + p2 * (1 - p2) / g0)

    return solve(
        variance=variance, effect=p1 - p2, clusters_per_arm=clusters_per_arm,
        allocation_ratio=allocation_ratio, alpha=alpha, power=power, test=test,
        strict=strict, df_lost=2, design_effect=vif,
        assumptions=lambda df: (
            f"Proportions {p1:g} vs {p2:g} (unpooled binomial variance), ICC {icc:g}, "
            f"design effect {vif:.4g} = {vif_text}; {_test_text(test, df, strict)}."),
    )


def rates(
    *,
    clusters_per_arm: ClusterCounts | None = None,
    rate1: float,
    rate2: float,
    person_time: float,
    cv_between: float,
    alpha: float = 0.05,
    power: float | None = None,
    allocation_ratio: float = 1.0,
    test: Test = "t",
    strict: bool = False,
) -> PowerResult:
    """Power or clusters per arm for a difference in event rates (Hayes and Bennett 1999).

    The other parameters are as in :func:`continuous`.

    Parameters
    ----------
    rate1, rate2 : float
        Event rates (per unit of person-time) in the intervention and control arms.
    person_time : float
        Person-time of follow-up in each cluster (e.g. 1000 people for 2 years: 2000).
    cv_between : float
        Coefficient of variation ``k`` of the true cluster rates within an arm.
    test : {"t", "normal"}
        ``"t"``: t on ``G1 + G0 - 2`` df with the cluster-rate variance below;
        ``"normal"``: Hayes and Bennett's own formula, z with ``G - 1`` in place of ``G``
        (their small-sample correction, the ``1 +`` of ``c = 1 + ...``); this is what
        ``clusterPower::cpa.count`` computes.

    Returns
    -------
    PowerResult
        ``design_effect`` is ``1 + k^2 (r1^2 + r2^2) y / (r1 + r2)``.

    Raises
    ------
    InvalidParameterError
        A rate, person_time not > 0 or cv_between < 0, and as in :func:`continuous`.

    Notes
    -----
    A cluster's observed rate has variance ``r / y + k^2 r^2`` in an arm with rate ``r``
    and person-time ``y``; the difference in arm means of cluster rates has variance
    ``(r1 / y + k^2 r1^2) / G1 + (r2 / y + k^2 r2^2) / G0``. Hayes and Bennett:
    ``c = 1 + (z_{alpha/2} + z_beta)^2 [(r1 + r2) / y + k^2 (r1^2 + r2^2)] /
    (r1 - r2)^2`` clusters per arm.

    References
    ----------
    Hayes RJ, Bennett S (1999). Simple sample size calculation for cluster-randomized
    trials. Int J Epidemiol 28:319-326.

    Examples
    --------
    R: ``clusterPower::cpa.count(nsubjects = 10, r1 = 0.10, r2 = 0.20, CVB = 0.10)``
    gives more than 24 clusters, so 25 per arm.

    >>> from crtstats import power
    >>> power.rates(rate1=0.1, rate2=0.2, person_time=10, cv_between=0.1, power=0.8,
    ...             test="normal").clusters_rounded
    (25, 25)
    """
    r1 = check_positive("rate1", rate1)
    r2 = check_positive("rate2", rate2)
    y = check_positive("person_time", person_time)
    k = check_positive("cv_between", cv_between, strict=False)
    v1 = r1 / y + k**2 * r1**2
    v2 = r2 / y + k**2 * r2**2
    # Hayes and Bennett's z formula uses G - 1 clusters in each arm.
    lost = 1.0 if test == "normal" else 0.0

    def variance(g1: float, g0: float) -> float:
        return v1 / max(g1 - lost, 1e-12) + v2 / max(g0 - lost, 1e-12)

    deff = 1.0 + k**2 * (r1**2 + r2**2) * y / (r1 + r2)
    return solve(
        variance=variance, effect=r1 - r2, clusters_per_arm=clusters_per_arm,
        allocation_ratio=allocation_ratio, alpha=alpha, power=power, test=test,
        strict=strict, df_lost=2, design_effect=deff,
        assumptions=lambda df: (
            f"Rates {r1:g} vs {r2:g} with person-time {y:g} per cluster, between-cluster "
            f"CV {k:g} (Hayes and Bennett); "
            + ("z with G - 1 clusters per arm" if test == "normal"
               else _test_text(test, df, strict)) + "."),
    )


def ancova(
    *,
    clusters_per_arm: ClusterCounts | None = None,
    cluster_size: float,
    effect: float,
    icc: float,
    cluster_autocorrelation: float,
    individual_autocorrelation: float = 0.0,
    sd: float = 1.0,
    analysis: AncovaAnalysis = "ancova",
    alpha: float = 0.05,
    power: float | None = None,
    allocation_ratio: float = 1.0,
    test: Test = "t",
    strict: bool = False,
) -> PowerResult:
    """Power or clusters per arm with the baseline measured (Teerenstra et al. 2012).

    The other parameters are as in :func:`continuous`.

    Parameters
    ----------
    cluster_size : float
        People measured per cluster at each wave.
    icc : float
        Intracluster correlation at each wave, in [0, 1).
    cluster_autocorrelation : float
        Correlation ``rho_c`` of a cluster's true mean at baseline and follow-up, [0, 1].
    individual_autocorrelation : float
        Correlation ``rho_s`` of a person's values at baseline and follow-up, [0, 1];
        0 for a repeated cross-section (different people at each wave).
    analysis : {"ancova", "change"}
        Follow-up adjusted for the baseline cluster mean (factor ``1 - r^2``, t on
        ``G1 + G0 - 3`` df) or the change from baseline (factor ``2 (1 - r)``, t on
        ``G1 + G0 - 2`` df).

    Returns
    -------
    PowerResult
        ``design_effect`` is ``(1 + (m - 1) ICC)`` times the factor of ``analysis``.

    Raises
    ------
    InvalidParameterError
        An autocorrelation outside [0, 1], and as in :func:`continuous`.

    Notes
    -----
    The correlation of a cluster's observed baseline and follow-up means is
    ``r = (m ICC rho_c + (1 - ICC) rho_s) / (1 + (m - 1) ICC)``. The design effect is
    ``(1 + (m - 1) ICC)(1 - r^2)`` for ANCOVA and ``(1 + (m - 1) ICC) 2 (1 - r)`` for
    the change score; the variance of the effect is ``sd^2 DE / m (1/G1 + 1/G0)``.

    References
    ----------
    Teerenstra S, Eldridge S, Graff M, de Hoop E, Borm GF (2012). A simple sample size
    formula for analysis of covariance in cluster randomized trials. Stat Med
    31:2169-2178.

    Examples
    --------
    CORE-like: 15 and 10 teams, 15 people per team, ICC 0.05, team means correlated 0.6
    across waves (no R package computes this; compare the formula in Teerenstra et al.).

    >>> from crtstats import power
    >>> res = power.ancova(clusters_per_arm=(15, 10), cluster_size=15, effect=0.4,
    ...                    icc=0.05, cluster_autocorrelation=0.6)
    >>> res.df
    22.0
    """
    check_option("analysis", analysis, ANCOVA_ANALYSES)
    icc = check_open_unit("icc", icc, closed_low=True)
    sd = check_positive("sd", sd)
    m = check_positive("cluster_size", cluster_size)
    rho_c = _check_correlation("cluster_autocorrelation", cluster_autocorrelation)
    rho_s = _check_correlation("individual_autocorrelation", individual_autocorrelation)
    deff0 = 1.0 + (m - 1.0) * icc
    r = (m * icc * rho_c + (1.0 - icc) * rho_s) / deff0
    factor = 1.0 - r**2 if analysis == "ancova" else 2.0 * (1.0 - r)
    deff = deff0 * factor

    def variance(g1: float, g0: float) -> float:
        return sd**2 * deff / m * (1.0 / g1 + 1.0 / g0)

    design = ("repeated cross-section" if rho_s == 0 else
              f"cohort (individual autocorrelation {rho_s:g})")
    how = "ANCOVA on the baseline cluster mean, DE x (1 - r^2)" if analysis == "ancova" \
        else "change from baseline, DE x 2(1 - r)"
    return solve(
        variance=variance, effect=float(effect), clusters_per_arm=clusters_per_arm,
        allocation_ratio=allocation_ratio, alpha=alpha, power=power, test=test,
        strict=strict, df_lost=3 if analysis == "ancova" else 2, design_effect=deff,
        assumptions=lambda df: (
            f"Difference of {effect:g} (SD {sd:g}), m = {m:g}, ICC {icc:g}, {design}, "
            f"cluster autocorrelation {rho_c:g}, r = {r:.4g}; {how} = {deff:.4g} "
            f"(Teerenstra); {_test_text(test, df, strict)}."),
    )


def _check_correlation(name: str, value: float) -> float:
    v = float(value)
    if not 0.0 <= v <= 1.0:
        raise InvalidParameterError(f"{name} must lie in [0, 1]; got {_format_value(value)}.")
    return v


@dataclass(frozen=True)
class ClusterSizeResult:
    """The cluster size needed with a fixed number of clusters (Hemming et al. 2011).

    Attributes
    ----------
    cluster_size : float
        Unrounded people per cluster.
    cluster_size_rounded : int
        ``cluster_size`` rounded up.
    clusters_per_arm : float
        The fixed number of clusters per arm.
    n_individual : float
        People per arm an individually randomised trial would need.
    design_effect : float
        ``1 + (m - 1) ICC`` at the unrounded size.
    assumptions : str
        One line stating the formula.
    """

    cluster_size: float
    cluster_size_rounded: int
    clusters_per_arm: float
    n_individual: float
    design_effect: float
    assumptions: str


def cluster_size_needed(
    *, clusters_per_arm: float, n_individual: float, icc: float
) -> ClusterSizeResult:
    """People per cluster needed when the number of clusters is fixed (Hemming 2011).

    Parameters
    ----------
    clusters_per_arm : float
        Clusters available in each arm, ``k``.
    n_individual : float
        Sample size per arm of an individually randomised trial with the wanted power,
        ``n_I``.
    icc : float
        Intracluster correlation, in [0, 1).

    Returns
    -------
    ClusterSizeResult

    Raises
    ------
    InfeasibleDesignError
        When ``k <= n_I ICC``: no cluster size gives the power with ``k`` clusters.
    InvalidParameterError
        icc outside [0, 1), counts not positive.

    Notes
    -----
    ``m = n_I (1 - ICC) / (k - n_I ICC)``, which solves ``k m = n_I (1 + (m - 1) ICC)``.
    ``n_I`` comes from a z formula, so the df of the analysis (``2(k - 1)``) is not
    accounted for: check the power of the result with :func:`continuous`.

    References
    ----------
    Hemming K, Girling AJ, Sitch AJ, Marsh J, Lilford RJ (2011). Sample size
    calculations for cluster randomised controlled trials with a fixed number of
    clusters. BMC Med Res Methodol 11:102.

    Examples
    --------
    R (no package function; the formula): ``n_I * (1 - icc) / (k - n_I * icc)`` with
    ``k = 12``, ``n_I = 100``, ``icc = 0.05`` gives 13.57, so 14 per cluster.

    >>> from crtstats import power
    >>> power.cluster_size_needed(clusters_per_arm=12, n_individual=100,
    ...                           icc=0.05).cluster_size_rounded
    14
    """
    k = check_positive("clusters_per_arm", clusters_per_arm)
    n_i = check_positive("n_individual", n_individual)
    icc = check_open_unit("icc", icc, closed_low=True)
    if k <= n_i * icc:
        raise InfeasibleDesignError(
            f"{k:g} clusters per arm cannot reach the power of an individually randomised "
            f"trial of {n_i:g} per arm at ICC {icc:g}: it needs more than n_individual x "
            f"ICC = {n_i * icc:g} clusters per arm whatever their size. Add clusters or "
            "accept a smaller power or a larger detectable effect."
        )
    m = n_i * (1.0 - icc) / (k - n_i * icc)
    return ClusterSizeResult(
        cluster_size=m,
        cluster_size_rounded=max(1, math.ceil(m - 1e-9)),
        clusters_per_arm=k,
        n_individual=n_i,
        design_effect=1.0 + (m - 1.0) * icc,
        assumptions=(
            f"m = n_I (1 - ICC) / (k - n_I ICC) with k = {k:g}, n_I = {n_i:g}, ICC {icc:g} "
            "(Hemming et al. 2011; z-based, df not accounted for)."),
    )

"""Intra-cluster correlation with confidence intervals, and the design effect."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd
from scipy import optimize, stats

from crtstats._options import check_option, require_columns
from crtstats.exceptions import InvalidParameterError, ModelSpecificationError
from crtstats.models._checks import check_fit_arguments

__all__ = ["ICCResult", "design_effect", "icc"]

ICCMethod = Literal["anova", "smith"]
_METHODS: tuple[ICCMethod, ...] = get_args(ICCMethod)


@dataclass(frozen=True, kw_only=True)
class ICCResult:
    """An intra-cluster correlation with its confidence interval.

    Attributes
    ----------
    estimate
        The ANOVA estimate ``(MSB - MSW) / (MSB + (n0 - 1) MSW)`` (may be negative).
    conf_low, conf_high
        Confidence limits at ``level``.
    level
        Confidence level.
    method
        ``"anova"`` (exact F-family interval) or ``"smith"`` (large-sample interval).
    n_clusters, nobs
        Clusters and observations used.
    n_excluded
        Rows left out because the outcome or cluster was missing.
    n0
        The size-adjusted mean cluster size ``(N - sum n_i^2 / N) / (k - 1)``.
    msb, msw
        Between- and within-cluster mean squares.
    """

    estimate: float
    conf_low: float
    conf_high: float
    level: float
    method: str
    n_clusters: int
    nobs: int
    n_excluded: int
    n0: float
    msb: float
    msw: float

    def to_frame(self) -> pd.DataFrame:
        """One-row tidy frame: ``icc, conf_low, conf_high, level, method, ...``."""
        return pd.DataFrame(
            {
                "icc": [self.estimate],
                "conf_low": [self.conf_low],
                "conf_high": [self.conf_high],
                "level": [self.level],
                "method": [self.method],
                "n_clusters": [self.n_clusters],
                "nobs": [self.nobs],
                "n0": [self.n0],
            }
        )


@dataclass(frozen=True)
class _Anova:
    sizes: np.ndarray
    means: np.ndarray
    ssw: float
    nobs: int

    @property
    def k(self) -> int:
        return int(self.sizes.size)

    @property
    def msw(self) -> float:
        return self.ssw / (self.nobs - self.k)

    @property
    def msb(self) -> float:
        grand = float(np.sum(self.sizes * self.means) / self.nobs)
        return float(np.sum(self.sizes * (self.means - grand) ** 2) / (self.k - 1))

    @property
    def n0(self) -> float:
        return float((self.nobs - np.sum(self.sizes**2) / self.nobs) / (self.k - 1))

    @property
    def rho(self) -> float:
        return (self.msb - self.msw) / (self.msb + (self.n0 - 1.0) * self.msw)


def _one_way(data: pd.DataFrame, outcome: str, cluster: str) -> tuple[_Anova, int]:
    check_fit_arguments("icc", "icc(columns)", data, {"outcome": outcome, "cluster": cluster})
    require_columns(data, [outcome, cluster], used_by="icc")
    if not pd.api.types.is_numeric_dtype(data[outcome]):
        raise ModelSpecificationError(
            f"outcome {outcome!r} must be numeric; its dtype is {data[outcome].dtype}."
        )
    used = data[[outcome, cluster]].dropna()
    y = used[outcome].to_numpy(dtype=float)
    codes, labels = pd.factorize(used[cluster], sort=False)
    k, n = len(labels), y.size
    if k < 2 or n <= k:
        raise ModelSpecificationError(
            f"the ICC needs at least 2 clusters and more observations than clusters; got {k} "
            f"cluster(s) and {n} observation(s) with {outcome!r} present."
        )
    sizes = np.bincount(codes).astype(float)
    means = np.bincount(codes, weights=y) / sizes
    ssw = float(np.sum((y - means[codes]) ** 2))
    return _Anova(sizes=sizes, means=means, ssw=ssw, nobs=n), int(len(data) - len(used))


def _wald_limits(a: _Anova, level: float) -> tuple[float, float]:
    """Wald's (1940) exact interval for theta = sigma_b^2 / sigma_w^2, as an ICC."""
    k, n = a.k, a.nobs
    theta_min = -1.0 / float(a.sizes.max())

    def f_stat(theta: float) -> float:
        w = a.sizes / (1.0 + a.sizes * theta)
        centre = np.sum(w * a.means) / np.sum(w)
        return float(np.sum(w * (a.means - centre) ** 2) / (k - 1) / a.msw)

    def solve(target: float) -> float:
        lo = theta_min + 1e-12 * max(1.0, abs(theta_min))
        if f_stat(lo) <= target:
            return theta_min
        hi = 1.0
        while f_stat(hi) > target:
            hi *= 4.0
            if hi > 1e12:
                return math.inf
        return float(optimize.brentq(lambda t: f_stat(t) - target, lo, hi, xtol=1e-14,
                                     rtol=4 * np.finfo(float).eps))

    tail = (1.0 - level) / 2.0
    theta_low = solve(float(stats.f.ppf(1.0 - tail, k - 1, n - k)))
    theta_high = solve(float(stats.f.ppf(tail, k - 1, n - k)))

    def as_icc(theta: float) -> float:
        return 1.0 if math.isinf(theta) else theta / (1.0 + theta)

    return as_icc(theta_low), as_icc(theta_high)


def _smith_limits(a: _Anova, level: float) -> tuple[float, float]:
    """Smith's (1956) large-sample variance of the ANOVA estimator."""
    rho, n0, k, n, ni = a.rho, a.n0, a.k, a.nobs, a.sizes
    lead = 2.0 * (1.0 - rho) ** 2 / n0**2
    within = (1.0 + rho * (n0 - 1.0)) ** 2 / (n - k)
    spread = np.sum(ni**2) - 2.0 * np.sum(ni**3) / n + np.sum(ni**2) ** 2 / n**2
    between = ((k - 1) * (1.0 - rho) * (1.0 + rho * (2.0 * n0 - 1.0)) + rho**2 * spread) / (
        k - 1
    ) ** 2
    se = math.sqrt(lead * (within + between))
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    return rho - z * se, rho + z * se


def icc(
    data: pd.DataFrame,
    *,
    outcome: str,
    cluster: str,
    method: ICCMethod = "anova",
    level: float = 0.95,
) -> ICCResult:
    """Intra-cluster correlation (one-way ANOVA estimator) with a confidence interval.

    Parameters
    ----------
    data
        One row per individual.
    outcome
        Numeric outcome column (continuous, or 0/1 for a binary outcome).
    cluster
        Column identifying the clusters.
    method
        ``"anova"`` (default): the exact interval of Wald (1940), which reduces to the
        F interval of the balanced case; exact for a normal outcome, balanced or not.
        ``"smith"``: the large-sample interval with Smith's (1956) variance, the usual
        choice for a binary outcome (Zou and Donner 2004).
    level
        Confidence level.

    Returns
    -------
    ICCResult
        Estimate, limits, mean squares and sizes, at full precision.

    Raises
    ------
    InvalidParameterError
        If ``method`` or ``level`` is not allowed.
    ModelSpecificationError
        If a column is missing or not numeric, or fewer than two clusters remain.

    Notes
    -----
    With k clusters of sizes ``n_i`` (N in all), ``MSB`` and ``MSW`` the one-way
    mean squares and ``n0 = (N - sum n_i^2 / N) / (k - 1)``,
    ``rho = (MSB - MSW) / (MSB + (n0 - 1) MSW)``.

    ``"anova"``: with ``theta = sigma_b^2 / sigma_w^2``, ``w_i = n_i / (1 + n_i theta)``
    and ``ybar_w`` the ``w``-weighted mean of the cluster means,
    ``F(theta) = sum w_i (ybar_i - ybar_w)^2 / (k - 1) / MSW`` has an
    ``F(k - 1, N - k)`` distribution at the true theta; the limits solve
    ``F(theta) = F_{1 - a/2}`` and ``F_{a/2}`` and are returned as
    ``theta / (1 + theta)``. Balanced data give ``(F/F_u - 1) / (F/F_u + n - 1)``.
    ``theta`` cannot fall below ``-1 / n_max`` (the largest cluster's weight would turn
    negative), so neither limit falls below ``-1 / (n_max - 1)``; with unequal sizes a
    strongly negative ANOVA estimate (whose own floor is ``-1 / (n0 - 1)``) can lie
    below the interval.

    ``"smith"``: ``rho -/+ z sqrt(V)`` with
    ``V = 2 (1 - rho)^2 / n0^2 {[1 + rho (n0 - 1)]^2 / (N - k) + [(k - 1)(1 - rho)
    (1 + rho (2 n0 - 1)) + rho^2 (sum n_i^2 - 2 sum n_i^3 / N + (sum n_i^2)^2 / N^2)]
    / (k - 1)^2}``. The limits are not truncated to [0, 1].

    Rows with a missing outcome or cluster are left out and counted in
    ``n_excluded``.

    References
    ----------
    Wald A (1940). Annals of Mathematical Statistics 11:96-100.
    Smith CAB (1956). Annals of Human Genetics 21:363-373.
    Donner A (1986). International Statistical Review 54:67-82.
    Zou G, Donner A (2004). Biometrics 60:807-811.

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"team": list("aaabbbccc"), "y": [1, 2, 3, 4, 5, 6, 2, 3, 4.0]})
    >>> res = icc(d, outcome="y", cluster="team")
    >>> round(res.estimate, 4)
    0.6667
    >>> res.conf_low < res.estimate < res.conf_high
    True

    R: ``psych::ICC`` (ICC1, balanced data) or ``ICC::ICCest(team, y, data = d)``.
    """
    check_option("method", method, _METHODS)
    if not 0.0 < level < 1.0:
        raise InvalidParameterError(f"level must be strictly between 0 and 1; got {level!r}.")
    anova, n_excluded = _one_way(data, outcome, cluster)
    if anova.msw <= 0.0 or anova.msb + (anova.n0 - 1.0) * anova.msw <= 0.0:
        raise ModelSpecificationError(
            f"{outcome!r} does not vary within clusters (within mean square {anova.msw!r}); "
            "the ICC is not defined."
        )
    low, high = (_wald_limits if method == "anova" else _smith_limits)(anova, level)
    return ICCResult(
        estimate=anova.rho,
        conf_low=low,
        conf_high=high,
        level=level,
        method=method,
        n_clusters=anova.k,
        nobs=anova.nobs,
        n_excluded=n_excluded,
        n0=anova.n0,
        msb=anova.msb,
        msw=anova.msw,
    )


def design_effect(mean_size: float, cv: float, icc: float) -> float:
    """Design effect of cluster randomisation with unequal cluster sizes.

    Parameters
    ----------
    mean_size
        Mean cluster size ``m`` (> 0).
    cv
        Coefficient of variation of the cluster sizes (>= 0; 0 for equal sizes).
    icc
        Intra-cluster correlation, between -1 and 1.

    Returns
    -------
    float
        ``1 + ((cv^2 + 1) m - 1) icc``.

    Raises
    ------
    InvalidParameterError
        If a value is outside its range or not finite.

    Notes
    -----
    Eldridge, Ashby and Kerry's formula; with ``cv = 0`` it is the familiar
    ``1 + (m - 1) icc``.

    References
    ----------
    Eldridge SM, Ashby D, Kerry S (2006). International Journal of Epidemiology
    35:1292-1300.

    Examples
    --------
    >>> round(design_effect(15, 0.0, 0.05), 4)
    1.7
    >>> round(design_effect(15, 0.5, 0.05), 4)
    1.8875

    R: ``1 + ((cv^2 + 1) * m - 1) * icc``.
    """
    checks = {
        "mean_size": (mean_size, mean_size > 0, "> 0"),
        "cv": (cv, cv >= 0, ">= 0"),
        "icc": (icc, -1 <= icc <= 1, "between -1 and 1"),
    }
    for name, (value, ok, rule) in checks.items():
        if not (math.isfinite(value) and ok):
            raise InvalidParameterError(f"{name} must be finite and {rule}; got {value!r}.")
    return 1.0 + ((cv**2 + 1.0) * mean_size - 1.0) * icc

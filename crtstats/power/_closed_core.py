"""The machinery shared by the closed-form power functions: the result, the argument
checks, and the power equation of a two-arm comparison of cluster-level summaries solved
for power or for the number of clusters."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from scipy import optimize, stats

from crtstats._options import check_option
from crtstats.exceptions import InvalidParameterError, _format_value

__all__ = [
    "ClusterCounts",
    "PowerResult",
    "Test",
    "check_alpha_power",
    "check_open_unit",
    "check_positive",
    "solve",
]

Test = Literal["t", "normal"]
TESTS: tuple[Test, ...] = ("t", "normal")

#: Clusters per arm: one number for both arms, or (intervention, control).
ClusterCounts = float | tuple[float, float]

# Numerical slack when rounding a solved cluster count up (15.0000000001 is 15).
_ROUND_SLACK = 1e-9


@dataclass(frozen=True)
class PowerResult:
    """The answer of a closed-form power or sample-size calculation.

    Attributes
    ----------
    power : float
        The power: the one asked for when solving for clusters, else the one computed.
    clusters_per_arm : tuple of float
        Clusters in the (intervention, control) arms; when solved for, the unrounded
        solution.
    clusters_rounded : tuple of int
        ``clusters_per_arm`` rounded up to whole clusters.
    power_rounded : float
        The power with ``clusters_rounded`` clusters (equal to ``power`` when the
        cluster counts were given as whole numbers).
    design_effect : float
        The variance inflation of one arm's mean relative to individual randomisation
        (for ``ancova``, including the baseline adjustment factor).
    df : float
        Degrees of freedom of the t test at ``clusters_per_arm`` (``inf`` for the
        normal approximation).
    solved_for : {"power", "clusters_per_arm"}
        Which quantity was computed.
    assumptions : str
        One line stating the design, the formula and the test.
    """

    power: float
    clusters_per_arm: tuple[float, float]
    clusters_rounded: tuple[int, int]
    power_rounded: float
    design_effect: float
    df: float
    solved_for: Literal["power", "clusters_per_arm"]
    assumptions: str

    @property
    def total_clusters(self) -> int:
        """Clusters in both arms after rounding up."""
        return self.clusters_rounded[0] + self.clusters_rounded[1]


def check_positive(name: str, value: float, *, strict: bool = True) -> float:
    """Return ``value`` as a float, raising ``InvalidParameterError`` unless it is
    finite and > 0 (``>= 0`` when ``strict`` is False)."""
    v = float(value)
    ok = math.isfinite(v) and (v > 0 if strict else v >= 0)
    if not ok:
        bound = "> 0" if strict else ">= 0"
        raise InvalidParameterError(f"{name} must be a finite number {bound}; got "
                                    f"{_format_value(value)}.")
    return v


def check_open_unit(name: str, value: float, *, closed_low: bool = False) -> float:
    """Return ``value`` as a float, raising unless it lies in (0, 1) (or [0, 1))."""
    v = float(value)
    ok = (0.0 <= v < 1.0) if closed_low else (0.0 < v < 1.0)
    if not ok:
        interval = "[0, 1)" if closed_low else "(0, 1)"
        raise InvalidParameterError(f"{name} must lie in {interval}; got "
                                    f"{_format_value(value)}.")
    return v


def check_alpha_power(alpha: float, power: float | None) -> None:
    """alpha in (0, 1); power, when given, in (alpha, 1)."""
    check_open_unit("alpha", alpha)
    if power is not None and not alpha < float(power) < 1.0:
        raise InvalidParameterError(
            f"power must lie in (alpha, 1) = ({alpha:g}, 1); got {_format_value(power)}. "
            "Give the power to solve for the number of clusters, or power=None to "
            "compute the power."
        )


def _clusters(
    clusters_per_arm: ClusterCounts | None, allocation_ratio: float, power: float | None
) -> tuple[float, float] | None:
    check_positive("allocation_ratio", allocation_ratio)
    if (clusters_per_arm is None) == (power is None):
        raise InvalidParameterError(
            "give exactly one of clusters_per_arm and power (the other is solved for); got "
            f"clusters_per_arm={_format_value(clusters_per_arm)}, "
            f"power={_format_value(power)}."
        )
    if clusters_per_arm is None:
        return None
    if allocation_ratio != 1.0:
        raise InvalidParameterError(
            "allocation_ratio is used only when solving for clusters_per_arm; give unequal "
            "arms as clusters_per_arm=(intervention, control) and leave allocation_ratio at "
            f"1; got allocation_ratio={_format_value(allocation_ratio)}."
        )
    if isinstance(clusters_per_arm, tuple | list):
        if len(clusters_per_arm) != 2:
            raise InvalidParameterError(
                "clusters_per_arm must be one number or a pair (intervention, control); "
                f"got {_format_value(clusters_per_arm)}."
            )
        g1, g0 = float(clusters_per_arm[0]), float(clusters_per_arm[1])
    else:
        g1 = g0 = float(clusters_per_arm)
    if not (math.isfinite(g1) and math.isfinite(g0)) or min(g1, g0) < 1 or g1 + g0 <= 2:
        raise InvalidParameterError(
            "clusters_per_arm must be at least 1 in each arm and more than 2 in all (so "
            f"that the t test has df > 0); got {_format_value(clusters_per_arm)}."
        )
    return g1, g0


def _power_at(
    ncp: float, df: float, alpha: float, test: Test, strict: bool
) -> float:
    """Power of a two-sided level-alpha test whose statistic has noncentrality ``ncp``."""
    if test == "t":
        crit = float(stats.t.isf(alpha / 2, df))
        upper = float(stats.nct.sf(crit, df, ncp))
        lower = float(stats.nct.cdf(-crit, df, ncp)) if strict else 0.0
    else:
        crit = float(stats.norm.isf(alpha / 2))
        upper = float(stats.norm.sf(crit - ncp))
        lower = float(stats.norm.cdf(-crit - ncp)) if strict else 0.0
    return upper + lower


def solve(
    *,
    variance: Callable[[float, float], float],
    effect: float,
    clusters_per_arm: ClusterCounts | None,
    allocation_ratio: float,
    alpha: float,
    power: float | None,
    test: str,
    strict: bool,
    df_lost: int,
    design_effect: float,
    assumptions: Callable[[float], str],
) -> PowerResult:
    """Solve the power equation of a two-arm cluster-level comparison.

    ``variance(g1, g0)`` is the variance of the estimated effect with ``g1`` and ``g0``
    clusters in the intervention and control arms. The test statistic is
    ``effect / sqrt(variance)``; with ``test="t"`` it is referred to t on
    ``g1 + g0 - df_lost`` df and the power is that of the noncentral t; with
    ``"normal"`` to the standard normal. ``strict`` adds the probability of rejecting in
    the wrong direction (R's ``power.t.test(strict = TRUE)``). ``assumptions(df)``
    writes the one-line statement. When even the smallest design (one cluster per arm
    and one df) has the power asked for, that design is returned.
    """
    check_option("test", test, TESTS)
    check_alpha_power(alpha, power)
    if power is not None and effect == 0:
        raise InvalidParameterError(
            "effect is 0: no number of clusters gives power above alpha / 2; give the "
            "smallest difference worth detecting."
        )
    given = _clusters(clusters_per_arm, allocation_ratio, power)
    t: Test = "t" if test == "t" else "normal"

    def df_of(g1: float, g0: float) -> float:
        return g1 + g0 - df_lost if t == "t" else math.inf

    def power_of(g1: float, g0: float) -> float:
        ncp = abs(effect) / math.sqrt(variance(g1, g0))
        return _power_at(ncp, df_of(g1, g0), alpha, t, strict)

    if given is not None:
        g1, g0 = given
        if t == "t" and df_of(g1, g0) <= 0:
            raise InvalidParameterError(
                f"with {g1:g} + {g0:g} clusters the t test has {df_of(g1, g0):g} df; "
                f"the analysis needs more than {df_lost} clusters in all."
            )
        achieved = power_of(g1, g0)
        solved: Literal["power", "clusters_per_arm"] = "power"
    else:
        assert power is not None
        g1, g0 = _solve_clusters(power_of, power, allocation_ratio, df_lost)
        achieved = power
        solved = "clusters_per_arm"
    r1 = max(1, math.ceil(g1 - _ROUND_SLACK))
    r0 = max(1, math.ceil(g0 - _ROUND_SLACK))
    at_rounded = achieved if (r1, r0) == (g1, g0) else power_of(float(r1), float(r0))
    return PowerResult(
        power=achieved,
        clusters_per_arm=(g1, g0),
        clusters_rounded=(r1, r0),
        power_rounded=at_rounded,
        design_effect=design_effect,
        df=df_of(g1, g0),
        solved_for=solved,
        assumptions=assumptions(df_of(g1, g0)),
    )


def _solve_clusters(
    power_of: Callable[[float, float], float], target: float, ratio: float, df_lost: int
) -> tuple[float, float]:
    """Control-arm clusters g0 (intervention ratio * g0) giving ``target`` power."""
    # The smallest design considered: one cluster in each arm and a t test on 1 df.
    low = max(1.0, (df_lost + 1.0) / (1.0 + ratio), 1.0 / ratio)

    def gap(g0: float) -> float:
        value = power_of(ratio * g0, g0)
        if not math.isfinite(value):
            raise InvalidParameterError(
                f"the power is not finite at {ratio * g0:g} and {g0:g} clusters; check the "
                "effect and variances."
            )
        return value - target

    if gap(low) >= 0:
        return ratio * low, low
    high = max(2.0 * low, 4.0)
    while gap(high) < 0:
        high *= 2.0
        if high > 1e8:
            raise InvalidParameterError(
                f"no number of clusters up to 1e8 per arm reaches power {target:g}; check "
                "the effect, variances and cluster size."
            )
    g0 = float(optimize.brentq(gap, low, high, xtol=1e-12, rtol=1e-14, maxiter=500))
    return ratio * g0, g0

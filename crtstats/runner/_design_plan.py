"""The ``[design]`` table of an analysis plan: how to simulate a trial for its power.

A design says how many teams each arm has and how they are spread over strata, how many
service users a team sees (a list, or a mean with a coefficient of variation drawn from
a gamma or negative binomial law), the variance components and true effects of each
outcome, and how much is lost to attrition or missed reviews. The same frozen
dataclasses serve Python users (``crtstats.power.TrialDesign``) and plans; bad values
raise :class:`~crtstats.exceptions.InvalidParameterError` naming the key, which a plan
reports as a :class:`~crtstats.exceptions.PlanError` under ``[design]``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, get_args

from crtstats.exceptions import InvalidParameterError, PlanError

__all__ = ["NULL_READMISSION", "BinaryDesign", "FidelityDesign", "SizeLaw", "TrialDesign",
           "parse_design"]

SizeLaw = Literal["gamma", "negative-binomial"]
SIZE_LAWS: tuple[str, ...] = get_args(SizeLaw)
#: Reviews after baseline, each with its own arm effect (from the fidelity schema's order).
FOLLOW_UP_REVIEWS = ("6m", "12m")
#: Total range of the 39-item scale (39 items scored 1-5).
TOTAL_RANGE = (39.0, 195.0)


def _number(value: Any, key: str, *, low: float | None = None, high: float | None = None,
            open_low: bool = False, open_high: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidParameterError(f"{key} must be a finite number; got {value!r}.")
    bad_low = low is not None and (value <= low if open_low else value < low)
    bad_high = high is not None and (value >= high if open_high else value > high)
    if bad_low or bad_high:
        left = "(" if open_low else "["
        right = ")" if open_high else "]"
        span = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
        raise InvalidParameterError(f"{key} must be in {span}; got {value!r}.")
    return float(value)


def _whole(value: Any, key: str, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidParameterError(f"{key} must be a whole number of at least {low}; "
                                    f"got {value!r}.")
    return value


@dataclass(frozen=True)
class FidelityDesign:
    """Fidelity reviews (the 39-195 total) at baseline, 6 and 12 months.

    The total of team ``i`` at review ``t`` is ``mean + trend[t] + effect[t] * I(arm i
    = intervention) + u_i + e_it`` with ``u_i ~ N(0, icc sd^2)`` and ``e_it ~ N(0, (1 -
    icc) sd^2)``, rounded to a whole number and kept in 39-195. Under this random-
    intercept model ``icc`` is also the correlation between a team's baseline and
    follow-up totals.

    Attributes
    ----------
    mean
        Mean total of control teams at baseline.
    sd
        Standard deviation of a review's total (team and review variance together).
    icc
        Share of that variance between teams, in [0, 1).
    effect
        Arm difference in the total at each follow-up review (``"6m"``, ``"12m"``).
    trend
        Change of the control mean from baseline at each follow-up review.
    """

    mean: float = 115.0
    sd: float = 15.0
    icc: float = 0.5
    effect: Mapping[str, float] = field(default_factory=lambda: {"6m": 0.0, "12m": 10.0})
    trend: Mapping[str, float] = field(default_factory=lambda: {"6m": 0.0, "12m": 0.0})

    def __post_init__(self) -> None:
        _number(self.mean, "fidelity.mean", low=TOTAL_RANGE[0], high=TOTAL_RANGE[1])
        _number(self.sd, "fidelity.sd", low=0.0, open_low=True)
        _number(self.icc, "fidelity.icc", low=0.0, high=1.0, open_high=True)
        for name in ("effect", "trend"):
            given = getattr(self, name)
            if not isinstance(given, Mapping):
                raise InvalidParameterError(f"fidelity.{name} must be a table of review = "
                                            f"number pairs; got {given!r}.")
            unknown = sorted(set(given) - set(FOLLOW_UP_REVIEWS))
            if unknown:
                raise InvalidParameterError(
                    f"fidelity.{name} names review(s) {unknown}; allowed: "
                    f"{', '.join(FOLLOW_UP_REVIEWS)} (baseline is before allocation).")
            values = {r: _number(given.get(r, 0.0), f"fidelity.{name}.{r}")
                      for r in FOLLOW_UP_REVIEWS}
            object.__setattr__(self, name, values)  # a copy, complete (picklable)


@dataclass(frozen=True)
class BinaryDesign:
    """A 0/1 service-user outcome (admission or readmission) in two periods.

    The log-odds for a service user of team ``i`` is ``logit(risk) + log(odds_ratio) *
    I(intervention, follow-up) + v_ip``: ``v_ip`` the team effect in period ``p`` (pre,
    follow-up), normal with variance ``tau^2 = icc (pi^2 / 3) / (1 - icc)`` (the latent-
    scale ICC) and correlation ``baseline_correlation`` between the periods.

    Attributes
    ----------
    risk
        Risk of a control team with team effect 0 (the conditional median risk) at
        follow-up.
    pre_risk
        The same in the pre period (None: equal to ``risk``).
    icc
        Latent-scale intra-cluster correlation, in [0, 1).
    odds_ratio
        Cluster-specific odds ratio of intervention at follow-up.
    baseline_correlation
        Correlation of a team's effects in the pre and follow-up periods, in [-1, 1].
    """

    risk: float = 0.25
    pre_risk: float | None = None
    icc: float = 0.05
    odds_ratio: float = 1.0
    baseline_correlation: float = 0.8

    def __post_init__(self) -> None:
        _number(self.risk, "risk", low=0.0, high=1.0, open_low=True, open_high=True)
        if self.pre_risk is not None:
            _number(self.pre_risk, "pre_risk", low=0.0, high=1.0, open_low=True,
                    open_high=True)
        _number(self.icc, "icc", low=0.0, high=1.0, open_high=True)
        _number(self.odds_ratio, "odds_ratio", low=0.0, open_low=True)
        _number(self.baseline_correlation, "baseline_correlation", low=-1.0, high=1.0)

    @property
    def team_variance(self) -> float:
        """The variance of the team effect on the log-odds scale, ``tau^2``."""
        return self.icc * (math.pi**2 / 3.0) / (1.0 - self.icc)


#: Readmission of a design that does not give one: risk 0.15, no arm effect.
NULL_READMISSION = BinaryDesign(risk=0.15, icc=0.05, baseline_correlation=0.5)


def _prefixed(where: str, build: Any, **kwargs: Any) -> Any:
    try:
        return build(**kwargs)
    except InvalidParameterError as err:
        text = str(err)
        raise InvalidParameterError(text if text.startswith(where) else f"{where}.{text}"
                                    ) from None


@dataclass(frozen=True)
class TrialDesign:
    """How to simulate a cluster-randomised trial of Crisis Resolution Teams.

    Attributes
    ----------
    intervention, control
        Teams allocated to each arm.
    strata
        Number of strata (NHS Trusts); teams are spread over them as evenly as possible
        and allocated within them, as in the trial.
    cluster_sizes
        Service users of each team per period (one whole number per team), or None to
        draw them from ``mean_cluster_size`` and ``cluster_size_cv``.
    mean_cluster_size, cluster_size_cv, cluster_size_law
        Mean and coefficient of variation of the service users per team and period,
        drawn once per team from a gamma law (rounded, at least 1) or a negative
        binomial law (at least 1; needs ``cv^2 > 1 / mean``).
    fidelity
        The fidelity reviews, or None for a trial without them.
    admitted, readmitted
        The service users' admission and CRT readmission, or None. With admission and
        no readmission design, readmission is still simulated (the admissions analyses
        use it) with :data:`NULL_READMISSION`: risk 0.15, no arm effect.
    attrition
        Probability that a service user's follow-up outcome is missing (at random).
    reviews_missing
        Probability that a team's 6- or 12-month review is missing (at random).
    seed
        Seed of the simulation (None: the plan's seed).
    """

    intervention: int = 15
    control: int = 10
    strata: int = 1
    cluster_sizes: tuple[int, ...] | None = None
    mean_cluster_size: float = 60.0
    cluster_size_cv: float = 0.0
    cluster_size_law: SizeLaw = "gamma"
    fidelity: FidelityDesign | None = field(default_factory=FidelityDesign)
    admitted: BinaryDesign | None = field(default_factory=BinaryDesign)
    readmitted: BinaryDesign | None = None
    attrition: float = 0.0
    reviews_missing: float = 0.0
    seed: int | None = None

    def __post_init__(self) -> None:
        _whole(self.intervention, "intervention", low=2)
        _whole(self.control, "control", low=2)
        n = self.n_teams
        if _whole(self.strata, "strata", low=1) > n // 2:
            raise InvalidParameterError(
                f"strata must leave at least two teams in each stratum; got {self.strata} "
                f"strata for {n} teams.")
        self._check_sizes(n)
        _number(self.attrition, "attrition", low=0.0, high=1.0, open_high=True)
        _number(self.reviews_missing, "reviews_missing", low=0.0, high=1.0, open_high=True)
        if self.seed is not None and not (isinstance(self.seed, int) and
                                          not isinstance(self.seed, bool) and self.seed >= 0):
            raise InvalidParameterError(f"seed must be a whole number of at least 0 or None; "
                                        f"got {self.seed!r}.")
        for name, kind in (("fidelity", FidelityDesign), ("admitted", BinaryDesign),
                           ("readmitted", BinaryDesign)):
            value = getattr(self, name)
            if value is not None and not isinstance(value, kind):
                raise InvalidParameterError(f"{name} must be a {kind.__name__} or None; got "
                                            f"{type(value).__name__}.")
        if self.readmitted is not None and self.admitted is None:
            raise InvalidParameterError("readmitted needs admitted too: the admissions table "
                                        "always has the admitted column.")
        if self.fidelity is None and self.admitted is None:
            raise InvalidParameterError("the design simulates no outcome: give fidelity, "
                                        "admitted or both.")

    def _check_sizes(self, n: int) -> None:
        if self.cluster_size_law not in SIZE_LAWS:
            raise InvalidParameterError(
                f"cluster_size_law must be one of {', '.join(map(repr, SIZE_LAWS))}; got "
                f"{self.cluster_size_law!r}.")
        mean = _number(self.mean_cluster_size, "mean_cluster_size", low=1.0)
        cv = _number(self.cluster_size_cv, "cluster_size_cv", low=0.0)
        if self.cluster_size_law == "negative-binomial" and cv > 0 and cv**2 <= 1.0 / mean:
            raise InvalidParameterError(
                f"cluster_size_cv must exceed 1 / sqrt(mean_cluster_size) = "
                f"{1 / math.sqrt(mean):.4g} for the negative binomial law (its variance is at "
                f"least the Poisson's); got {cv!r}. Use the gamma law for less variation.")
        if self.cluster_sizes is not None:
            sizes = tuple(self.cluster_sizes)
            if len(sizes) != n:
                raise InvalidParameterError(f"cluster_sizes must give one size per team "
                                            f"({n}); got {len(sizes)}.")
            for k, size in enumerate(sizes):
                _whole(size, f"cluster_sizes[{k}]", low=1)
            object.__setattr__(self, "cluster_sizes", sizes)

    @property
    def n_teams(self) -> int:
        """Teams in the trial."""
        return self.intervention + self.control

    def scaled(self, factor: float) -> TrialDesign:
        """The design with every effect multiplied by ``factor`` on its analysis scale.

        Fidelity differences are multiplied, odds ratios raised to the power ``factor``
        (their logarithm multiplied); ``scaled(0.0)`` is the null design.
        """
        _number(factor, "factor")
        fidelity = self.fidelity
        if fidelity is not None:
            fidelity = replace(fidelity, effect={r: v * factor for r, v in
                                                 fidelity.effect.items()})
        def power_of(b: BinaryDesign | None) -> BinaryDesign | None:
            return None if b is None else replace(b, odds_ratio=b.odds_ratio**factor)

        return replace(self, fidelity=fidelity, admitted=power_of(self.admitted),
                       readmitted=power_of(self.readmitted))


# -- the plan's [design] table -------------------------------------------------------------


def _keys(table: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise PlanError(f"{where} has an unknown key {key!r}; allowed keys: "
                            f"{', '.join(allowed)}.{hint}")


def _sub(raw: Mapping[str, Any], name: str, kind: type[Any], where: str) -> Any:
    if name not in raw:
        return None
    table = raw[name]
    if not isinstance(table, dict):
        raise PlanError(f"{where}.{name} must be a table, e.g. [design.{name}].")
    _keys(table, tuple(f.name for f in fields(kind)), f"{where}.{name}")
    return _prefixed(name, kind, **table)


def parse_design(raw: Any) -> TrialDesign:
    """Check the plan's ``[design]`` table and return it as a :class:`TrialDesign`.

    Parameters
    ----------
    raw
        The table as parsed from TOML. Sub-tables ``[design.fidelity]``,
        ``[design.admitted]`` and ``[design.readmitted]`` hold the outcomes; fidelity or
        admission without its table is not simulated.

    Returns
    -------
    TrialDesign
        The checked design.

    Raises
    ------
    PlanError
        If a key is unknown or a value is not allowed; the message names the key.

    Examples
    --------
    >>> d = parse_design({"intervention": 12, "control": 12, "fidelity": {"icc": 0.3}})
    >>> d.n_teams, d.fidelity.icc, d.admitted is None
    (24, 0.3, True)
    """
    where = "[design]"
    if not isinstance(raw, dict):
        raise PlanError(f"{where} must be a table.")
    outcomes = {"fidelity": FidelityDesign, "admitted": BinaryDesign,
                "readmitted": BinaryDesign}
    top = tuple(f.name for f in fields(TrialDesign))
    _keys(raw, top, where)
    try:
        parts = {name: _sub(raw, name, kind, where) for name, kind in outcomes.items()}
        rest = {k: v for k, v in raw.items() if k not in outcomes}
        if isinstance(rest.get("cluster_sizes"), list):
            rest["cluster_sizes"] = tuple(rest["cluster_sizes"])
        return TrialDesign(**rest, **parts)
    except InvalidParameterError as err:
        raise PlanError(f"{where} {err}") from None

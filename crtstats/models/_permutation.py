"""Randomisation (permutation) tests that re-randomise clusters as the design did."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from crtstats._options import check_option
from crtstats.exceptions import (
    FewClustersWarning,
    InvalidParameterError,
    ModelSpecificationError,
)
from crtstats.models._cluster_data import (
    check_arguments,
    check_outcome_values,
    cluster_table,
    complete_rows,
    row_sizes,
    treatment_indicator,
)
from crtstats.models._warn import WarningLog

__all__ = ["PermutationResult", "permutation_test"]

BuiltinStatistic = Literal["mean_difference", "log_ratio", "t"]
_BUILTINS: tuple[BuiltinStatistic, ...] = get_args(BuiltinStatistic)
_FITTER = "permutation_test"
_EPS = float(np.finfo(float).eps)
#: Below this many allocations no two-sided p-value under 0.05 is possible.
_FEW_ALLOCATIONS = 20


@dataclass(frozen=True, kw_only=True)
class PermutationResult:
    """The result of a randomisation test.

    Attributes
    ----------
    statistic
        Name of the statistic (the built-in's name, or the callable's ``__name__``).
    observed
        The statistic on the data as allocated.
    pvalue
        Two-sided p-value: the share of allocations with ``|T*| >= |T|`` (up to
        ``tie_tolerance``); exact when every allocation was enumerated, else
        ``(b + 1) / (m + 1)`` over m draws.
    mcse
        Monte Carlo standard error of ``pvalue``, ``sqrt(p (1 - p) / m)``; 0 if exact.
    exact
        Whether every allocation was enumerated.
    n_resamples
        Allocations evaluated (all of them when exact).
    n_allocations
        How many allocations the design allows.
    null_distribution
        The statistic under every evaluated allocation (read-only).
    n_clusters
        Clusters re-randomised.
    n_excluded
        Rows left out for a missing outcome, exposure, offset or cluster.
    tie_tolerance
        Two values of the compared quantity closer than this count as equal (see
        Notes of :func:`permutation_test`).
    warnings
        Every warning the test issued (records with ``.category``).
    """

    statistic: str
    observed: float
    pvalue: float
    mcse: float
    exact: bool
    n_resamples: int
    n_allocations: int
    null_distribution: np.ndarray = field(repr=False)
    n_clusters: int
    n_excluded: int = 0
    tie_tolerance: float = 0.0
    warnings: tuple[str, ...] = ()

    @property
    def info(self) -> Mapping[str, Any]:
        """Read-only ``n_excluded`` and ``n_clusters``, under the keys fits use."""
        return MappingProxyType({"n_excluded": self.n_excluded,
                                 "n_clusters": self.n_clusters})

    def to_frame(self) -> pd.DataFrame:
        """One-row tidy frame of the test (without the null distribution)."""
        return pd.DataFrame(
            {
                "statistic": [self.statistic],
                "observed": [self.observed],
                "pvalue": [self.pvalue],
                "mcse": [self.mcse],
                "exact": [self.exact],
                "n_resamples": [self.n_resamples],
                "n_allocations": [self.n_allocations],
            }
        )


def _blocks(table: pd.DataFrame, block: str | None) -> list[np.ndarray]:
    """Cluster positions per randomisation block (one block without strata or pairs)."""
    if block is None:
        return [np.arange(len(table))]
    codes, _ = pd.factorize(table[block], sort=True)
    return [np.flatnonzero(codes == b) for b in range(codes.max() + 1)]


def _enumerate(blocks: list[np.ndarray], treated: np.ndarray) -> np.ndarray:
    """Every allocation (rows) keeping the number treated in each block."""
    choices = []
    for members in blocks:
        n_t = int(treated[members].sum())
        combos = np.zeros((math.comb(members.size, n_t), members.size), dtype=bool)
        for row, chosen in enumerate(itertools.combinations(range(members.size), n_t)):
            combos[row, list(chosen)] = True
        choices.append(combos)
    # the cartesian product of the blocks' choices, first block varying slowest
    grids = np.indices([c.shape[0] for c in choices]).reshape(len(choices), -1)
    out = np.zeros((grids.shape[1], len(treated)), dtype=bool)
    for members, combos, pick in zip(blocks, choices, grids, strict=True):
        out[:, members] = combos[pick]
    return out


def _draw(blocks: list[np.ndarray], treated: np.ndarray, n: int, seed: Any) -> np.ndarray:
    """``n`` random allocations, each block permuted independently."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, len(treated)), dtype=bool)
    for members in blocks:
        n_t = int(treated[members].sum())
        keys = rng.random((n, members.size))
        chosen = np.argsort(keys, axis=1)[:, :n_t]
        sub = np.zeros((n, members.size), dtype=bool)
        np.put_along_axis(sub, chosen, True, axis=1)
        out[:, members] = sub
    return out


def _builtin(name: str, values: np.ndarray, alloc: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """A cluster-level statistic for every allocation (rows of ``alloc``), and the mean
    difference its p-value compares.

    ``values`` (summaries, or their logs) are centred first, so the sums hold no large
    common part: adding a constant to every value changes only the last bits. For
    ``"t"`` the group sizes are the same under every allocation, so ``|t|`` increases
    with ``|difference|`` and the p-value is that of the difference.
    """
    v = values - values.mean()
    v = v - v.mean()
    a = alloc.astype(float)
    k = a.shape[1]
    n1 = a.sum(axis=1)
    n0 = k - n1
    diff = (a @ v) / n1 - ((1.0 - a) @ v) / n0
    if name != "t":
        return diff, diff
    within = np.maximum(float(v @ v) - n1 * n0 / k * diff**2, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = diff / np.sqrt(within / (k - 2.0) * (1.0 / n1 + 1.0 / n0))
    return t, diff


def _cluster_summaries(data: pd.DataFrame, outcome: str, cluster: str, exposure: str | None,
                       offset: str | None, name: str, log: WarningLog) -> np.ndarray:
    """Per cluster (order of first appearance): total over size, or its logarithm."""
    y = check_outcome_values(data, outcome, "continuous", fitter=_FITTER)
    size = row_sizes(data, exposure=exposure, offset=offset, fitter=_FITTER, log=log)
    sums = pd.DataFrame({"c": data[cluster].to_numpy(), "y": y, "n": size}).groupby(
        "c", sort=False)[["y", "n"]].sum()
    summaries: np.ndarray = (sums["y"] / sums["n"]).to_numpy(float)
    if name == "log_ratio" and np.any(summaries <= 0):
        bad = list(sums.index[summaries <= 0][:5])
        raise ModelSpecificationError(
            f"permutation_test: statistic 'log_ratio' needs positive cluster summaries of "
            f"{outcome!r}; cluster(s) {bad} have {summaries.min()!r} (no events?). Use "
            "statistic='mean_difference', or the log-ratio values of cluster_level(..., "
            "scale='ratio'), which handle zero clusters."
        )
    if name == "log_ratio":
        summaries = np.log(summaries)
    return summaries


def _tie_tolerance(values: np.ndarray, name: str) -> float:
    """Differences of the compared statistic below this are rounding, not data.

    Each value is known to within its own rounding, ``eps |x|`` (``eps`` in absolute
    terms for a logarithm); a difference of means of k centred values carries at most
    about ``2 (k + 2) eps max|x|``, two of them twice that; the tolerance doubles it.
    """
    size = float(np.max(np.abs(values))) + (1.0 if name == "log_ratio" else 0.0)
    return 8.0 * (values.size + 2) * _EPS * size


def _block_column(strata: str | None, pairs: str | None, table: pd.DataFrame,
                  treated: np.ndarray) -> str | None:
    if pairs is None:
        return strata
    counts = pd.DataFrame({"pair": table[pairs], "t": treated}).groupby("pair")["t"].agg(
        ["size", "sum"]
    )
    bad = counts.index[(counts["size"] != 2) | (counts["sum"] != 1)]
    if len(bad):
        raise ModelSpecificationError(
            f"each pair in {pairs!r} must hold two clusters, one per arm; pairs {list(bad[:5])} "
            "do not."
        )
    return pairs


def _check_options(statistic: Any, n_resamples: Any, strata: str | None,
                   pairs: str | None, outcome: str | None, exposure: str | None,
                   offset: str | None) -> None:
    if not callable(statistic):
        check_option("statistic", statistic, _BUILTINS)
        if outcome is None:
            raise ModelSpecificationError(
                f"permutation_test: the built-in statistic {statistic!r} needs "
                "outcome=<column>, whose cluster summaries it compares."
            )
    elif any(c is not None for c in (outcome, exposure, offset)):
        raise InvalidParameterError(
            "permutation_test: outcome=, exposure= and offset= are for the built-in "
            "statistics; a callable statistic reads its own columns from the data."
        )
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise InvalidParameterError(f"n_resamples must be a positive integer; got {n_resamples!r}.")
    if strata is not None and pairs is not None:
        raise InvalidParameterError(
            "give strata or pairs, not both (pairs are the randomisation blocks)."
        )


def _pvalue(compared: np.ndarray, observed: float, tol: float, exact: bool
            ) -> tuple[float, float]:
    """Two-sided p-value and its Monte Carlo SE (0 when exact)."""
    hits = int(np.sum(np.abs(compared) >= abs(observed) - tol))
    m = compared.size
    if exact:
        return hits / m, 0.0
    p = (hits + 1) / (m + 1)
    return p, math.sqrt(p * (1.0 - p) / m)


def permutation_test(
    data: pd.DataFrame,
    *,
    statistic: BuiltinStatistic | Callable[[pd.DataFrame], float],
    arm: str,
    cluster: str,
    strata: str | None = None,
    pairs: str | None = None,
    n_resamples: int = 10000,
    seed: int | np.random.SeedSequence | None = None,
    outcome: str | None = None,
    exposure: str | None = None,
    offset: str | None = None,
    treated: Any = None,
) -> PermutationResult:
    """Randomisation test that re-allocates whole clusters exactly as the design did.

    Parameters
    ----------
    data
        One row per individual (or per cluster); ``arm``, ``strata`` and ``pairs`` must
        be constant within clusters.
    statistic
        A callable taking the data with the arm column re-randomised and returning a
        float (e.g. the arm coefficient of any crtstats fitter), or a built-in
        cluster-level statistic computed on the cluster summaries of ``outcome``
        (cluster mean, or total over total exposure): ``"mean_difference"``
        (intervention minus control mean of the summaries), ``"log_ratio"`` (the same
        for their logarithms) or ``"t"`` (the pooled two-sample t statistic).
    arm, cluster
        Columns of the arm and of the clusters.
    strata, pairs
        Randomisation blocks: re-randomisation keeps the number of intervention
        clusters in each stratum (or one of each pair).
    n_resamples
        All allocations are enumerated when there are at most this many; otherwise
        this many are drawn at random.
    seed
        Seed of the random draws (ignored when exact).
    outcome
        Outcome column of a built-in statistic.
    exposure, offset
        Denominator of a rate summary: raw ``exposure`` (summed per cluster), or a
        log-scale ``offset`` (a row's exposure is ``exp(offset)``, times ``exposure``
        when both are given), as in the other fitters.
    treated
        The arm value of the intervention; by default ``"intervention"`` (or 1).

    Returns
    -------
    PermutationResult
        Observed statistic, two-sided p-value, its Monte Carlo standard error, the
        tie tolerance used, and the warnings issued.

    Raises
    ------
    InvalidParameterError
        On an unknown built-in, ``n_resamples < 1``, both ``strata`` and ``pairs``,
        a non-column argument, or ``outcome``/``exposure``/``offset`` with a callable.
    MissingColumnError
        If a column is not in ``data``.
    ModelSpecificationError
        On a missing arm, stratum or pair (the allocation must be known), an arm
        varying within a cluster, fewer than two arms, malformed pairs, infinite
        values, a non-positive exposure, cluster summaries that are all equal, a
        ``"t"`` with two clusters, or a statistic that is not finite.

    Warns
    -----
    ExcludedRowsWarning
        Rows with a missing outcome, exposure, offset or cluster are left out; a
        cluster with no complete row is not re-randomised.
    FewClustersWarning
        Fewer than 20 allocations: no p-value below 0.05 is possible.
    ExposureWarning
        An ``offset`` of whole numbers above 1 looks like a raw exposure.

    Every warning is also recorded in the result's ``warnings``.

    Notes
    -----
    With T the observed statistic and ``T*_j`` its value under allocation j,
    ``p = #{j: |T*_j| >= |T| - tol} / J`` over all J allocations (exact, the observed
    one included), or ``(b + 1) / (m + 1)`` over m random allocations (Phipson and
    Smyth 2010), with ``MCSE = sqrt(p (1 - p) / m)``.

    The built-in statistics are vectorised over allocations and computed from
    centred summaries. Their p-value compares the mean difference ``D`` (for ``"t"``
    too: with the arm sizes fixed, ``|t|`` increases with ``|D|``), with
    ``tol = 8 (k + 2) eps max|x|`` for k clusters with summaries (or log summaries)
    ``x`` (``max|x| + 1`` for logs): the rounding error of two such differences, so
    allocations that tie in exact arithmetic tie here, whatever constant is added to
    the summaries or unit they are in. For a callable, ``tol = sqrt(eps) max |T*_j|``
    (R's ``all.equal`` tolerance), as its value may come from an iterative fit.

    References
    ----------
    Gail MH et al. (1996). Statistics in Medicine 15:1069-1092.
    Phipson B, Smyth GK (2010). Statistical Applications in Genetics and Molecular
    Biology 9:39.

    Examples
    --------
    >>> import crtstats
    >>> trial = crtstats.datasets.load_example()
    >>> fu = trial.admissions[trial.admissions["period"] == "follow_up"].merge(
    ...     trial.teams, on="team_id")
    >>> res = crtstats.permutation_test(fu, statistic="mean_difference", outcome="admitted",
    ...                                 arm="arm", cluster="team_id", strata="stratum",
    ...                                 seed=1)
    >>> res.exact, res.n_allocations, res.n_resamples
    (False, 13122, 10000)

    R: ``ri2::conduct_ri()`` with a blocked ``randomizr::declare_ra()``.
    """
    _check_options(statistic, n_resamples, strata, pairs, outcome, exposure, offset)
    extra = [c for c in (strata, pairs) if c is not None]
    check_arguments(_FITTER, data, {"arm": arm, "cluster": cluster, "strata": strata,
                                    "pairs": pairs, "outcome": outcome,
                                    "exposure": exposure, "offset": offset},
                    optional=("strata", "pairs", "outcome", "exposure", "offset"))
    log = WarningLog()
    measured = [c for c in (outcome, exposure, offset) if c is not None]
    rows = complete_rows(data, fitter=_FITTER, design=[arm, *extra], cluster=cluster,
                         measured=measured, log=log)
    used = rows.data
    table = cluster_table(used, arm=arm, cluster=cluster, extra=extra)
    treated_now = treatment_indicator(table[arm], treated) > 0
    blocks = _blocks(table, _block_column(strata, pairs, table, treated_now))
    n_alloc = math.prod(math.comb(b.size, int(treated_now[b].sum())) for b in blocks)
    if n_alloc < _FEW_ALLOCATIONS:
        log.warn(f"permutation_test: the design allows only {n_alloc} allocation(s) of "
                 f"{len(table)} clusters, so no p-value below 1/{n_alloc} = "
                 f"{1 / n_alloc:.3g} is possible and the test cannot reject at 5%. Report "
                 "it as such; more clusters are needed for randomisation inference.",
                 FewClustersWarning)
    exact = n_alloc <= n_resamples
    alloc = _enumerate(blocks, treated_now) if exact else _draw(
        blocks, treated_now, n_resamples, seed)
    if callable(statistic):
        name = getattr(statistic, "__name__", "statistic")
        observed = float(statistic(used))
        null = _callable_null(used, statistic, table, alloc, arm, cluster, treated_now)
        compared, observed_compared = null, observed
        scale = max(abs(observed), float(np.max(np.abs(null), initial=0.0)))
        tol = math.sqrt(_EPS) * scale if np.isfinite(scale) else 0.0
    else:
        name = str(statistic)
        assert outcome is not None  # checked by _check_options
        values = _cluster_summaries(used, outcome, cluster, exposure, offset, name, log)
        tol = _check_builtin(values, name, outcome)
        obs_stat, obs_diff = _builtin(name, values, treated_now[None, :])
        observed, observed_compared = float(obs_stat[0]), float(obs_diff[0])
        null, compared = _builtin(name, values, alloc)
    _check_finite(name, observed, null, allow_inf=name == "t" and np.isfinite(observed))
    pvalue, mcse = _pvalue(compared, observed_compared, tol, exact)
    null.flags.writeable = False
    return PermutationResult(
        statistic=name, observed=observed, pvalue=pvalue, mcse=mcse, exact=exact,
        n_resamples=int(alloc.shape[0]), n_allocations=n_alloc, null_distribution=null,
        n_clusters=len(table), n_excluded=rows.n_excluded, tie_tolerance=tol,
        warnings=log.records,
    )


def _check_builtin(values: np.ndarray, name: str, outcome: str) -> float:
    """The tie tolerance, after refusing summaries that are all equal or a t on two."""
    tol = _tie_tolerance(values, name)
    centred = values - values.mean()
    if float(np.max(np.abs(centred))) <= tol:
        raise ModelSpecificationError(
            f"permutation_test: every cluster summary of {outcome!r} equals "
            f"{values[0]!r} (constant outcome): the statistic is the same under every "
            "allocation and the test carries no information. There is no comparison to "
            "make; report the summaries instead."
        )
    if name == "t" and values.size < 3:
        raise ModelSpecificationError(
            f"permutation_test: statistic 't' needs at least three clusters for its "
            f"pooled variance; got {values.size}. Use statistic='mean_difference'."
        )
    return tol


def _check_finite(name: str, observed: float, null: np.ndarray, *, allow_inf: bool) -> None:
    """A statistic must be finite; ``"t"`` may be infinite where an allocation leaves no
    variation within the arms (its p-value compares the finite mean difference)."""
    bad = np.isnan(null) if allow_inf else ~np.isfinite(null)
    if not np.isfinite(observed) or bad.any():
        hint = (" The observed t is infinite when the summaries do not vary within the "
                "arms: use statistic='mean_difference'." if name == "t" else "")
        raise ModelSpecificationError(
            f"permutation_test: the statistic {name!r} is not finite (observed "
            f"{observed!r}, {int(bad.sum())} of {null.size} re-randomised values); it "
            f"must be a finite float for every allocation.{hint}"
        )


def _callable_null(
    data: pd.DataFrame, statistic: Callable[[pd.DataFrame], float], table: pd.DataFrame,
    alloc: np.ndarray, arm: str, cluster: str, treated_now: np.ndarray,
) -> np.ndarray:
    """The callable evaluated with the arm column re-allocated cluster by cluster."""
    codes = pd.Index(table[cluster]).get_indexer(data[cluster])
    arm_values = table[arm].to_numpy()
    treated_label = arm_values[treated_now][0]
    control_label = arm_values[~treated_now][0]
    labels = np.array([control_label, treated_label], dtype=object)
    frame = data.copy()
    out = np.empty(alloc.shape[0])
    for j, row in enumerate(alloc):
        frame[arm] = pd.Series(labels[row[codes].astype(int)], index=frame.index).astype(
            data[arm].dtype
        )
        out[j] = float(statistic(frame.copy(deep=False)))
    return out

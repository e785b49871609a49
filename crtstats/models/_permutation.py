"""Randomisation (permutation) tests that re-randomise clusters as the design did."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from crtstats._options import check_option
from crtstats.exceptions import InvalidParameterError, ModelSpecificationError
from crtstats.models._cluster_level import cluster_table, treatment_indicator

__all__ = ["PermutationResult", "permutation_test"]

BuiltinStatistic = Literal["mean_difference", "log_ratio", "t"]
_BUILTINS: tuple[BuiltinStatistic, ...] = get_args(BuiltinStatistic)


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
        Two-sided p-value: the share of allocations with ``|T*| >= |T|``; exact when
        every allocation was enumerated, else ``(b + 1) / (m + 1)`` over m draws.
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
    """

    statistic: str
    observed: float
    pvalue: float
    mcse: float
    exact: bool
    n_resamples: int
    n_allocations: int
    null_distribution: np.ndarray = field(repr=False)

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


def _builtin(name: str, summaries: np.ndarray, alloc: np.ndarray) -> np.ndarray:
    """A cluster-level statistic for every allocation at once (rows of ``alloc``)."""
    values = np.log(summaries) if name == "log_ratio" else summaries
    a = alloc.astype(float)
    n1 = a.sum(axis=1)
    n0 = a.shape[1] - n1
    m1 = a @ values / n1
    m0 = (1.0 - a) @ values / n0
    diff = m1 - m0
    if name != "t":
        out: np.ndarray = diff
        return out
    ss = a @ values**2 - n1 * m1**2 + (1.0 - a) @ values**2 - n0 * m0**2
    pooled = ss / (n1 + n0 - 2.0)
    out = diff / np.sqrt(pooled * (1.0 / n1 + 1.0 / n0))
    return out


def _cluster_summaries(data: pd.DataFrame, outcome: str | None, cluster: str,
                       exposure: str | None, name: str) -> np.ndarray:
    if outcome is None:
        raise ModelSpecificationError(
            f"the built-in statistic {name!r} needs outcome=<column>."
        )
    cols = [outcome, *([exposure] if exposure else [])]
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise ModelSpecificationError(f"the data have no column(s) {missing}.")
    if data[cols].isna().any().any():
        raise ModelSpecificationError(
            f"{cols} have missing values; drop or impute them before the test."
        )
    grouped = data.groupby(cluster, sort=False)
    total = grouped[outcome].sum().to_numpy(float)
    size = (grouped[exposure].sum() if exposure else grouped.size()).to_numpy(float)
    summaries: np.ndarray = total / size
    if name == "log_ratio" and np.any(summaries <= 0):
        raise ModelSpecificationError(
            f"statistic 'log_ratio' needs positive cluster summaries of {outcome!r}; "
            f"the smallest is {summaries.min()!r}."
        )
    return summaries


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
        (cluster mean, or total over total ``exposure``): ``"mean_difference"``
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
    outcome, exposure
        Outcome (and exposure) columns of a built-in statistic.
    treated
        The arm value of the intervention; by default ``"intervention"`` (or 1).

    Returns
    -------
    PermutationResult
        Observed statistic, two-sided p-value and its Monte Carlo standard error.

    Raises
    ------
    InvalidParameterError
        On an unknown built-in, ``n_resamples < 1``, or both ``strata`` and ``pairs``.
    ModelSpecificationError
        On missing columns, an arm varying within a cluster, or malformed pairs.

    Notes
    -----
    With T the observed statistic and ``T*_j`` its value under allocation j,
    ``p = #{j: |T*_j| >= |T| (1 - 1e-12)} / J`` over all J allocations (exact, the
    observed one included), or ``(b + 1) / (m + 1)`` over m random allocations
    (Phipson and Smyth 2010), with ``MCSE = sqrt(p (1 - p) / m)``. The built-in
    statistics are vectorised over allocations.

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
    if not callable(statistic):
        check_option("statistic", statistic, _BUILTINS)
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise InvalidParameterError(f"n_resamples must be a positive integer; got {n_resamples!r}.")
    if strata is not None and pairs is not None:
        raise InvalidParameterError(
            "give strata or pairs, not both (pairs are the randomisation blocks)."
        )
    extra = [c for c in (strata, pairs) if c is not None]
    for col in (arm, cluster, *extra):
        if col not in data.columns:
            raise ModelSpecificationError(
                f"the data have no column {col!r}; available columns: {list(data.columns)}."
            )
    missing = [c for c in (arm, cluster, *extra) if data[c].isna().any()]
    if missing:
        raise ModelSpecificationError(
            f"{missing} have missing values; every cluster needs its arm (and stratum or "
            "pair) to be re-randomised. Drop or complete those rows first."
        )
    table = cluster_table(data, arm=arm, cluster=cluster, extra=extra)
    treated_now = treatment_indicator(table[arm], treated) > 0
    blocks = _blocks(table, _block_column(strata, pairs, table, treated_now))
    n_alloc = math.prod(math.comb(b.size, int(treated_now[b].sum())) for b in blocks)
    exact = n_alloc <= n_resamples
    alloc = _enumerate(blocks, treated_now) if exact else _draw(
        blocks, treated_now, n_resamples, seed
    )
    if callable(statistic):
        name = getattr(statistic, "__name__", "statistic")
        observed = float(statistic(data))
        null = _callable_null(data, statistic, table, alloc, arm, cluster, treated_now)
    else:
        name = statistic
        summaries = _cluster_summaries(data, outcome, cluster, exposure, statistic)
        observed = float(_builtin(statistic, summaries, treated_now[None, :])[0])
        null = _builtin(statistic, summaries, alloc)
    if not (np.isfinite(observed) and np.all(np.isfinite(null))):
        raise ModelSpecificationError(
            f"the statistic {name!r} is not finite (observed {observed!r}, "
            f"{int(np.sum(~np.isfinite(null)))} of {null.size} re-randomised values); it "
            "must return a finite float for every allocation."
        )
    hits = int(np.sum(np.abs(null) >= np.abs(observed) * (1.0 - 1e-12)))
    m = alloc.shape[0]
    pvalue = hits / m if exact else (hits + 1) / (m + 1)
    null.flags.writeable = False
    return PermutationResult(
        statistic=name,
        observed=observed,
        pvalue=pvalue,
        mcse=0.0 if exact else math.sqrt(pvalue * (1.0 - pvalue) / m),
        exact=exact,
        n_resamples=m,
        n_allocations=n_alloc,
        null_distribution=null,
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

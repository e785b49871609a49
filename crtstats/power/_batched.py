"""The batched route: the fidelity LMM of many simulated trials fitted at once.

A plan entry ``fitter = "lmm"`` on ``data = "scores"`` (no ``where``) of the total is
fitted to a block of simulated trials with :class:`crtstats.models.BatchedLMM` instead
of one :func:`crtstats.lmm` call per trial. The trials are the same (drawn from the same
seeds, see :func:`crtstats.power._trials.draw_trial`); the totals are read from the
draws, without building the tables (the scorer returns exactly the simulated total).
It is exact because the teams of a simulated trial are exchangeable: sorting each
trial's teams by (stratum, arm) gives the same design matrix for every trial with the
same number of intervention teams in each stratum, and an LMM does not depend on how
teams are labelled or rows ordered. So the block's trials are grouped by that allocation
pattern, each group is one batch, and a missed review is a masked row. The labels of
the rows (outcome, analysis, estimand) come from the entry's per-trial fit of the first
trial of each block; a trial whose batched fit does not converge is left to the
per-trial route (its row is None here).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Literal, TypeVar

import numpy as np
import pandas as pd

from crtstats.exceptions import CRTStatsError, InvalidParameterError
from crtstats.models import BatchedLMM
from crtstats.power._trials import REVIEWS, TrialDraws, stratum_names
from crtstats.runner import AnalysisSpec

__all__ = ["BatchKind", "allocation_order", "batch_kind", "batchable", "cached_fitter",
           "fit_batched",
           "pattern_frame", "result_row"]

#: The batched fitters: BatchedLMM (fidelity total) and BatchedGLMM (admission).
BatchKind = Literal["lmm", "glmm"]
Row = dict[str, object]
Pattern = tuple[tuple[str, str], ...]
T = TypeVar("T")


def _response(spec: AnalysisSpec) -> str:
    return (spec.formula or "").split("~")[0].strip()


def _rhs(spec: AnalysisSpec) -> str:
    return " ".join((spec.formula or "").split("~", 1)[-1].split())


def batch_kind(spec: AnalysisSpec) -> BatchKind | None:
    """Which batched fitter fits ``spec`` (None: it is fitted trial by trial).

    ``"lmm"``: ``fitter = "lmm"`` on ``data = "scores"``, no ``where``, outcome
    ``total``, an estimand (``term`` or ``contrast``), options at most ``ddf``.
    ``"glmm"``: ``fitter = "glmm"`` on ``data = "admissions"`` with ``where = { period =
    "follow_up" }``, formula ``admitted ~ arm`` or ``admitted ~ arm + stratum``, family
    binomial, the default between-within df (``method`` ML or REML Laplace).
    """
    if not (spec.contrast or spec.term):
        return None
    if (spec.fitter == "lmm" and spec.source == "scores" and not spec.where
            and _response(spec) == "total" and set(spec.options) <= {"ddf"}):
        return "lmm"
    options = dict(spec.options)
    if (spec.fitter == "glmm" and spec.source == "admissions" and spec.cluster == "team_id"
            and dict(spec.where) == {"period": "follow_up"}
            and _response(spec) == "admitted"
            and _rhs(spec) in ("arm", "arm + stratum")
            and set(options) <= {"family", "ddf", "method"}
            and options.get("family", "binomial") == "binomial"
            and options.get("ddf", "between-within") == "between-within"):
        return "glmm"
    return None


def batchable(spec: AnalysisSpec) -> bool:
    """Whether ``spec`` is an entry the batched route fits (see :func:`batch_kind`)."""
    return batch_kind(spec) is not None


def allocation_order(draws: TrialDraws) -> tuple[Pattern, np.ndarray]:
    """The trial's (stratum, arm) pattern in sorted order, and the teams in that order.

    Teams are sorted by stratum name, then arm (control first), then team number, as a
    sort of the tables' ``stratum`` and ``arm`` columns would order them.
    """
    names = stratum_names(draws.strata)
    arms = np.where(draws.treated, "intervention", "control")
    order = np.lexsort((np.arange(draws.strata.size), arms, np.asarray(names)))
    pattern = tuple((names[o], str(arms[o])) for o in order)
    return pattern, order


def pattern_frame(pattern: Pattern, rows_per_team: int,
                  extra: dict[str, int] | None = None) -> pd.DataFrame:
    """Covariates of a pattern's teams, ``rows_per_team`` rows each (team-major)."""
    n = len(pattern)
    frame = pd.DataFrame({
        "team_id": np.repeat([f"C{p:03d}" for p in range(n)], rows_per_team),
        "arm": np.repeat([a for _, a in pattern], rows_per_team),
        "stratum": np.repeat([s for s, _ in pattern], rows_per_team),
    })
    for name, value in (extra or {}).items():
        frame[name] = value
    return frame


_CACHE_SIZE = 64
_FITTERS: dict[tuple[object, ...], object] = {}
_FITTERS_LOCK = threading.Lock()


def cached_fitter(key: tuple[object, ...], build: Callable[[], T]) -> T:
    """The batched fitter of ``key`` (formula, contrast, pattern...), built once per
    process: its design and per-cluster quantities do not depend on the outcomes, and
    the same allocation patterns recur from block to block.

    Safe under threads (a Dask worker runs several blocks at once): the cache is read
    and changed under a lock; a fitter is built outside it (two threads may both build
    one for a new key; the first stored is kept), and a fitter is never changed after
    it is built except for its own cache of checked patterns, whose entries do not
    depend on the order they are made in.
    """
    with _FITTERS_LOCK:
        found = _FITTERS.get(key)
    if found is not None:
        return found  # type: ignore[return-value]
    built = build()
    with _FITTERS_LOCK:
        if key not in _FITTERS:
            while len(_FITTERS) >= _CACHE_SIZE:
                _FITTERS.pop(next(iter(_FITTERS)))
            _FITTERS[key] = built
        return _FITTERS[key]  # type: ignore[return-value]


def result_row(labels: Row, fit: object, j: int, *, ratio: bool) -> Row | None:
    """The effects row of column ``j`` of a batched fit (None: not converged)."""
    estimate = float(fit.estimate[j])  # type: ignore[attr-defined]
    if not bool(fit.converged[j]) or not np.isfinite(estimate):  # type: ignore[attr-defined]
        return None
    values = [estimate, float(fit.conf_low[j]), float(fit.conf_high[j])]  # type: ignore[attr-defined]
    if ratio:
        values = [float(v) for v in np.exp(values)]
    boundary = bool(fit.boundary[j])  # type: ignore[attr-defined]
    return {**labels, "estimate": values[0], "conf_low": values[1], "conf_high": values[2],
            "pvalue": float(fit.pvalue[j]), "df": float(fit.df[j]),  # type: ignore[attr-defined]
            "n_warnings": int(boundary), "error": ""}


def fit_batched(spec: AnalysisSpec, draws: Sequence[TrialDraws],
                labels: Row) -> list[Row | None]:
    """One effects row per trial (in order) for the fidelity LMM entry ``spec``.

    Parameters
    ----------
    spec
        An entry of :func:`batch_kind` ``"lmm"``.
    draws
        The block's simulated trials (their draws).
    labels
        The label columns of the entry's row (outcome, analysis, role, estimand, scale).

    Returns
    -------
    list of dict or None
        ``estimate``, ``conf_low``, ``conf_high``, ``pvalue``, ``df`` and the labels;
        ``n_warnings`` is 1 for a boundary fit; None for a trial whose fit did not
        converge (to be fitted on its own).

    Raises
    ------
    InvalidParameterError
        If the design has no fidelity reviews.
    """
    contrast = dict(spec.contrast) if spec.contrast else {str(spec.term): 1.0}
    ddf = str(spec.options.get("ddf", "kenward-roger"))
    groups: dict[Pattern, list[tuple[int, np.ndarray]]] = {}
    for k, trial in enumerate(draws):
        if trial.fidelity is None:
            raise InvalidParameterError("the batched LMM route needs a design with fidelity.")
        pattern, order = allocation_order(trial)
        totals = np.where(trial.fidelity.keep, trial.fidelity.totals, np.nan)[order]
        groups.setdefault(pattern, []).append((k, totals.ravel()))
    out: list[Row | None] = [None] * len(draws)
    reviews = pd.Categorical(REVIEWS, categories=list(REVIEWS), ordered=True)
    for pattern, members in groups.items():
        y = np.column_stack([t for _, t in members])
        mask = np.isfinite(y)
        def build(pattern: Pattern = pattern) -> BatchedLMM:
            frame = pattern_frame(pattern, len(REVIEWS))
            frame["review"] = reviews[np.tile(np.arange(len(REVIEWS)), len(pattern))]
            return BatchedLMM(str(spec.formula), frame, cluster="team_id",
                              contrast=contrast, ddf=ddf)  # type: ignore[arg-type]

        key = ("lmm", spec.formula, tuple(contrast.items()), ddf, pattern)
        try:
            batch = cached_fitter(key, build)
        except CRTStatsError:  # a design lmm refuses: the per-trial fits report it
            continue
        # trials with every review share their design (BatchedLMM's fast path); the
        # others are fitted with their mask
        complete = mask.all(axis=0)
        for cols in (np.flatnonzero(complete), np.flatnonzero(~complete)):
            if cols.size == 0:
                continue
            part = mask[:, cols]
            fit = batch.fit(np.where(part, y[:, cols], 0.0),
                            mask=None if part.all() else part)
            for j, c in enumerate(cols):
                out[members[c][0]] = result_row(labels, fit, j, ratio=False)
    return out

"""The batched route: the fidelity LMM of many simulated trials fitted at once.

A plan entry ``fitter = "lmm"`` on ``data = "scores"`` (no ``where``) is fitted to a block
of simulated trials with :class:`crtstats.models.BatchedLMM` instead of one
:func:`crtstats.lmm` call per trial. The trials are the same (the same tables, drawn
from the same seeds); only the fitting is batched. It is exact because the teams of a
simulated trial are exchangeable: sorting each trial's teams by (stratum, arm) gives
the same design matrix for every trial with the same number of intervention teams in
each stratum, and an LMM does not depend on how teams are labelled or rows ordered. So
the block's trials are grouped by that allocation pattern, each group is one batch, and
a missed review is a masked row. The labels of the rows (outcome, analysis, estimand)
come from the entry's per-trial fit of the first trial of each block.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from crtstats.exceptions import InvalidParameterError
from crtstats.models import BatchedLMM
from crtstats.power._trials import N_ITEMS, REVIEWS, SimulatedTables
from crtstats.runner import AnalysisSpec

__all__ = ["batchable", "fit_batched"]

_ITEMS = [f"item_{k + 1:02d}" for k in range(N_ITEMS)]


def batchable(spec: AnalysisSpec) -> bool:
    """Whether ``spec`` is an LMM entry on the fidelity scores that can be batched."""
    response = (spec.formula or "").split("~")[0].strip()
    return (spec.fitter == "lmm" and spec.source == "scores" and not spec.where
            and response == "total" and bool(spec.contrast or spec.term)
            and set(spec.options) <= {"ddf"})


def _canonical(tables: SimulatedTables) -> tuple[tuple[tuple[str, str], ...], np.ndarray]:
    """The trial's (stratum, arm) pattern in sorted order and its totals (teams x reviews)."""
    if tables.fidelity is None:
        raise InvalidParameterError("the batched LMM route needs a design with fidelity.")
    teams = tables.teams.reset_index(drop=True)
    order = np.lexsort((np.arange(len(teams)), teams["arm"].to_numpy(dtype=str),
                        teams["stratum"].to_numpy(dtype=str)))
    ids = teams["team_id"].to_numpy(dtype=str)
    position = {ids[o]: p for p, o in enumerate(order)}
    totals = np.full((len(teams), len(REVIEWS)), np.nan)
    fid = tables.fidelity
    rows = np.array([position[t] for t in fid["team_id"].to_numpy(dtype=str)], dtype=np.int64)
    review_of = {r: c for c, r in enumerate(REVIEWS)}
    cols = np.array([review_of[r] for r in fid["review"].to_numpy(dtype=str)], dtype=np.int64)
    totals[rows, cols] = fid[_ITEMS].to_numpy(dtype=float).sum(axis=1)
    pattern = tuple(zip(teams["stratum"].iloc[order], teams["arm"].iloc[order], strict=True))
    return pattern, totals


def _frame(pattern: tuple[tuple[str, str], ...]) -> pd.DataFrame:
    n = len(pattern)
    return pd.DataFrame({
        "team_id": np.repeat([f"C{p:03d}" for p in range(n)], len(REVIEWS)),
        "arm": np.repeat([a for _, a in pattern], len(REVIEWS)),
        "stratum": np.repeat([s for s, _ in pattern], len(REVIEWS)),
        "review": pd.Categorical(np.tile(REVIEWS, n), categories=list(REVIEWS), ordered=True),
    })


def fit_batched(spec: AnalysisSpec, tables: Sequence[SimulatedTables],
                labels: dict[str, object]) -> list[dict[str, object]]:
    """One effects row per trial (in order) for the LMM entry ``spec``.

    Parameters
    ----------
    spec
        A :func:`batchable` entry.
    tables
        The block's simulated trials.
    labels
        The label columns of the entry's row (outcome, analysis, role, estimand, scale).

    Returns
    -------
    list of dict
        ``estimate``, ``conf_low``, ``conf_high``, ``pvalue``, ``df`` and the labels;
        ``n_warnings`` is 1 for a boundary or non-converged fit.
    """
    contrast = dict(spec.contrast) if spec.contrast else {str(spec.term): 1.0}
    ddf = str(spec.options.get("ddf", "kenward-roger"))
    groups: dict[tuple[tuple[str, str], ...], list[tuple[int, np.ndarray]]] = {}
    for k, trial in enumerate(tables):
        pattern, totals = _canonical(trial)
        groups.setdefault(pattern, []).append((k, totals))
    out: list[dict[str, object]] = [{} for _ in tables]
    for pattern, members in groups.items():
        y = np.column_stack([t.ravel() for _, t in members])
        mask = np.isfinite(y)
        batch = BatchedLMM(str(spec.formula), _frame(pattern), cluster="team_id",
                           contrast=contrast, ddf=ddf)  # type: ignore[arg-type]
        fit = batch.fit(np.where(mask, y, 0.0), mask=None if mask.all() else mask)
        for j, (k, _) in enumerate(members):
            out[k] = {**labels, "estimate": fit.estimate[j], "conf_low": fit.conf_low[j],
                      "conf_high": fit.conf_high[j], "pvalue": fit.pvalue[j],
                      "df": fit.df[j],
                      "n_warnings": int(bool(fit.boundary[j]) or not bool(fit.converged[j])),
                      "error": "" if bool(fit.converged[j]) else "not converged"}
    return out

"""Fitting a plan's analyses to simulated trials: trial by trial, or in batches.

A *task* is a block of simulated trials of one scenario (a design with its effects
scaled by a factor; factor 0 is the null). Each trial ``k`` draws its data from
``SeedSequence(seed).spawn(...)[k]``, whatever the scenario, block or worker, so a run
gives the same numbers on one process, on ``N`` processes or on a Dask cluster, and
scenarios share their random numbers (common random numbers: the power curve is smooth
and the null and the alternative are paired).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd

from crtstats.analysis import EFFECT_COLUMNS
from crtstats.exceptions import CRTStatsError
from crtstats.power._batched import batch_kind, batchable, fit_batched
from crtstats.power._batched_glmm import fit_batched_glmm
from crtstats.power._trials import (
    SimulatedTables,
    Stop,
    TrialDraws,
    draw_trial,
    simulate_tables,
    tables_from_draws,
)
from crtstats.runner import (
    AnalysisSpec,
    Plan,
    TrialDesign,
    TrialInputs,
    analysis_frames,
    fit_analysis,
    score,
)

__all__ = ["ENGINES", "RESULT_COLUMNS", "Engine", "Task", "run_task", "trial_seeds"]

#: How the entries are fitted: one call per trial, or batched where an entry allows it.
Engine = Literal["tables", "batched"]
ENGINES: tuple[str, ...] = get_args(Engine)

#: Columns of the per-trial results: the trial, its scenario, the entry, then the
#: effect row's columns used in the summary, and how many warnings its fit issued.
RESULT_COLUMNS = ("factor", "trial", "entry", "outcome", "analysis", "role", "estimand",
                  "scale", "estimate", "conf_low", "conf_high", "pvalue", "df",
                  "n_warnings", "error")
_KEEP = ("outcome", "analysis", "role", "estimand", "scale", "estimate", "conf_low",
         "conf_high", "pvalue", "df")


@dataclass(frozen=True)
class Task:
    """A block of simulated trials of one scenario, the unit of work sent to a worker.

    Attributes
    ----------
    plan
        The plan (its analyses are fitted; its ``design`` is not used: see ``design``).
    design
        The scenario's design (the plan's, effects scaled by ``factor``).
    factor
        The scale factor of the effects (0: the null).
    seed
        The root seed.
    trials
        The indices of the trials in this block.
    entries
        The names of the plan's analyses to fit.
    engine
        ``"tables"``: every entry fitted trial by trial; ``"batched"``: the fidelity LMM
        and admission GLMM entries fitted as one batch per allocation pattern (see
        :mod:`crtstats.power._batched` and :mod:`crtstats.power._batched_glmm`), the
        others trial by trial.
    """

    plan: Plan
    design: TrialDesign
    factor: float
    seed: int
    trials: tuple[int, ...]
    entries: tuple[str, ...]
    engine: Engine = "tables"


def trial_seeds(seed: int, trials: Sequence[int]) -> list[np.random.SeedSequence]:
    """The seed sequence of each trial: child ``k`` of ``SeedSequence(seed)``."""
    return [np.random.SeedSequence(seed, spawn_key=(int(k),)) for k in trials]


def _inputs(tables: SimulatedTables) -> TrialInputs:
    named = {"teams": tables.teams, "fidelity": tables.fidelity,
             "admissions": tables.admissions, "service_use": tables.service_use}
    present = {k: v for k, v in named.items() if v is not None}
    return TrialInputs(provenance={}, tables=present, trial=None)


def _fit_trial(plan: Plan, specs: Sequence[AnalysisSpec], tables: SimulatedTables,
               analysis_seed: int) -> list[dict[str, object]]:
    inputs = _inputs(tables)
    scores = score(plan, inputs)
    frames = analysis_frames(inputs, scores, plan=plan)
    named = {"trial": tables, "scores": scores, "teams": frames["teams"]}
    rows: list[dict[str, object]] = []
    for spec in specs:
        try:
            done = fit_analysis(spec, frames=frames, inputs=named,  # type: ignore[arg-type]
                                seed=analysis_seed)
        except CRTStatsError as err:  # a degenerate simulated trial: counted, not fatal
            rows.append({"entry": spec.name, "error": f"{type(err).__name__}: {err}"})
            continue
        n_warn = len(done.warnings)
        for record in done.effects.reindex(columns=list(EFFECT_COLUMNS)).to_dict("records"):
            row: dict[str, object] = {k: record[k] for k in _KEEP}
            rows.append({"entry": spec.name, **row, "n_warnings": n_warn, "error": ""})
    return rows


@dataclass
class _Drawn:
    """One trial of a block: its index, draws, data seed and analysis seed; its tables
    are built only when a per-trial fit needs them."""

    trial: int
    draws: TrialDraws
    data_seq: np.random.SeedSequence
    analysis_seed: int
    complete: bool
    _tables: SimulatedTables | None = None

    def tables(self, design: TrialDesign) -> SimulatedTables:
        if self._tables is None:
            self._tables = (tables_from_draws(design, self.draws) if self.complete else
                            simulate_tables(design, np.random.default_rng(self.data_seq)))
        return self._tables


def _draw(task: Task, stop: Stop | None) -> list[_Drawn]:
    drawn = []
    for k, seq in zip(task.trials, trial_seeds(task.seed, task.trials), strict=True):
        data_seq, analysis_seq = seq.spawn(2)
        draws = draw_trial(task.design, np.random.default_rng(data_seq), stop=stop)
        drawn.append(_Drawn(k, draws, data_seq, int(analysis_seq.generate_state(1, np.uint32)[0]),
                            complete=stop is None))
    return drawn


#: The label columns of a batched entry's rows, by entry (``repr`` of its spec). They
#: depend on the entry only (its formula, estimand, fitter and family), so the first
#: successful per-trial fit in a process gives them for every later block.
_LABELS: dict[str, dict[str, object]] = {}
#: Guards ``_LABELS``: threaded workers (a Dask worker with several threads) run blocks
#: at once.
_LABELS_LOCK = threading.Lock()
_LABEL_KEYS = ("outcome", "analysis", "role", "estimand", "scale")
#: Held while a block's trials are fitted. The fits record their warnings with
#: ``warnings.catch_warnings``, which swaps process-wide state: two threads inside it at
#: once lose or misfile each other's warnings (or let them escape, as errors under an
#: ``error`` filter). So threads of one process fit one block at a time (their draws
#: still run at once); parallel speed comes from processes (``workers``, or Dask
#: workers with one thread each).
_FIT_LOCK = threading.RLock()

_BATCH_FITS = {"lmm": fit_batched, "glmm": fit_batched_glmm}


def _batched_rows(task: Task, spec: AnalysisSpec,
                  drawn: list[_Drawn]) -> list[list[dict[str, object]]]:
    """Rows of a batchable entry per trial; labels from a per-trial fit of the entry."""
    def own(d: _Drawn) -> list[dict[str, object]]:
        return _fit_trial(task.plan, [spec], d.tables(task.design), d.analysis_seed)

    key = repr(spec)
    with _LABELS_LOCK:
        known = _LABELS.get(key)
    if known is None:
        first = own(drawn[0])
        if len(first) != 1 or first[0].get("error"):
            return [own(d) for d in drawn]
        with _LABELS_LOCK:  # the labels depend on the entry only: any thread's will do
            known = _LABELS.setdefault(key, {k: first[0][k] for k in _LABEL_KEYS})
    labels = known
    kind = batch_kind(spec)
    assert kind is not None  # run_task batches batchable entries only
    rows = _BATCH_FITS[kind](spec, [d.draws for d in drawn], labels)
    return [own(d) if row is None else [{"entry": spec.name, **row}]
            for d, row in zip(drawn, rows, strict=True)]


def _stop(specs: Sequence[AnalysisSpec]) -> Stop:
    """The last draw the batched entries need."""
    return "admitted" if any(batch_kind(s) == "glmm" for s in specs) else "fidelity"


def run_task(task: Task) -> pd.DataFrame:
    """Simulate and analyse every trial of ``task``; one row per trial and effect row.

    With ``engine = "batched"``, the batchable entries are fitted from the trials'
    draws; the tables of a trial are built only for the entries fitted trial by trial,
    for the first trial of a process's first block (whose own fit labels the rows) and
    for a trial whose batched fit did not converge. When every entry is batchable, the draws stop
    after the last outcome they need.

    Safe to call from several threads at once: the fits of a block run under a
    process-wide lock (warnings are recorded through process-wide state), the draws
    outside it.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`RESULT_COLUMNS`, rows in trial order (entries in plan order).
    """
    specs = [a for a in task.plan.analyses if a.name in task.entries]
    batched = [s for s in specs if task.engine == "batched" and batchable(s)]
    rest = [s for s in specs if s not in batched]
    drawn = _draw(task, None if rest or not batched else _stop(batched))
    rows: list[dict[str, object]] = []
    with _FIT_LOCK:
        per_entry = {s.name: _batched_rows(task, s, drawn) for s in batched}
        for j, d in enumerate(drawn):
            fitted = (_fit_trial(task.plan, rest, d.tables(task.design), d.analysis_seed)
                      if rest else [])
            by_entry = {s.name: [r for r in fitted if r["entry"] == s.name] for s in rest}
            for spec in specs:
                chosen = (per_entry[spec.name][j] if spec.name in per_entry
                          else by_entry[spec.name])
                rows += [{"factor": task.factor, "trial": d.trial, **row} for row in chosen]
    frame = pd.DataFrame(rows).reindex(columns=list(RESULT_COLUMNS))
    frame["error"] = frame["error"].fillna("")
    return frame

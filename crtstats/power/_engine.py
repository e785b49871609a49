"""Fitting a plan's analyses to simulated trials, one trial at a time.

A *task* is a block of simulated trials of one scenario (a design with its effects
scaled by a factor; factor 0 is the null). Each trial ``k`` draws its data from
``SeedSequence(seed).spawn(...)[k]``, whatever the scenario, block or worker, so a run
gives the same numbers on one process, on ``N`` processes or on a Dask cluster, and
scenarios share their random numbers (common random numbers: the power curve is smooth
and the null and the alternative are paired).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd

from crtstats.analysis import EFFECT_COLUMNS
from crtstats.exceptions import CRTStatsError
from crtstats.power._batched import batchable, fit_batched
from crtstats.power._trials import SimulatedTables, simulate_tables
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
        entries fitted as one batch per allocation pattern (see
        :mod:`crtstats.power._batched`), the others trial by trial.
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


def _draw(task: Task) -> list[tuple[int, SimulatedTables, int]]:
    drawn = []
    for k, seq in zip(task.trials, trial_seeds(task.seed, task.trials), strict=True):
        data_seq, analysis_seq = seq.spawn(2)
        tables = simulate_tables(task.design, np.random.default_rng(data_seq))
        drawn.append((k, tables, int(analysis_seq.generate_state(1, np.uint32)[0])))
    return drawn


def _batched_rows(task: Task, spec: AnalysisSpec,
                  drawn: list[tuple[int, SimulatedTables, int]]) -> list[list[dict[str, object]]]:
    """Rows of a batchable entry per trial; labels from the first trial's own fit."""
    first = _fit_trial(task.plan, [spec], drawn[0][1], drawn[0][2])
    if len(first) != 1 or first[0].get("error"):
        return [_fit_trial(task.plan, [spec], t, s) for _, t, s in drawn]
    labels = {k: first[0][k] for k in ("outcome", "analysis", "role", "estimand", "scale")}
    rows = fit_batched(spec, [t for _, t, _ in drawn], labels)
    return [[{"entry": spec.name, **row}] for row in rows]


def run_task(task: Task) -> pd.DataFrame:
    """Simulate and analyse every trial of ``task``; one row per trial and effect row.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`RESULT_COLUMNS`, rows in trial order (entries in plan order).
    """
    specs = [a for a in task.plan.analyses if a.name in task.entries]
    drawn = _draw(task)
    per_entry: dict[str, list[list[dict[str, object]]]] = {}
    if task.engine == "batched":
        per_entry = {s.name: _batched_rows(task, s, drawn) for s in specs if batchable(s)}
    rest = [s for s in specs if s.name not in per_entry]
    rows: list[dict[str, object]] = []
    for j, (k, tables, analysis_seed) in enumerate(drawn):
        fitted = _fit_trial(task.plan, rest, tables, analysis_seed) if rest else []
        by_entry = {s.name: [r for r in fitted if r["entry"] == s.name] for s in rest}
        for spec in specs:
            chosen = per_entry[spec.name][j] if spec.name in per_entry else by_entry[spec.name]
            rows += [{"factor": task.factor, "trial": k, **row} for row in chosen]
    frame = pd.DataFrame(rows).reindex(columns=list(RESULT_COLUMNS))
    frame["error"] = frame["error"].fillna("")
    return frame

"""``crtstats.power.simulate``: power of the planned analyses by simulation.

The work is cut into blocks of trials (:class:`~crtstats.power._engine.Task`) and run
in this process, on a :class:`concurrent.futures.ProcessPoolExecutor`, or on a Dask
distributed cluster. Each trial's seed depends only on the root seed and the trial's
index, so the results do not depend on how the blocks are run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from crtstats._options import check_option
from crtstats.exceptions import InvalidParameterError, PlanError
from crtstats.power._engine import ENGINES, Engine, Task, run_task
from crtstats.power._summary import summarise
from crtstats.runner import Plan, TrialDesign, load_plan, parse_plan

__all__ = ["SimulationResult", "default_plan", "simulate"]

#: Trials per block sent to a worker.
BLOCK = 20
#: Trials per block on the batched route (a batch is fitted per block).
BATCH_BLOCK = 500


@dataclass(frozen=True)
class SimulationResult:
    """The result of :func:`simulate`.

    Attributes
    ----------
    summary
        One row per reported effect and scale factor (columns
        :data:`crtstats.power.SUMMARY_COLUMNS`): power and its Monte Carlo SE, the type
        I error of the same analysis on as many trials simulated under the null and its
        SE, mean estimate, coverage of the true effect, trials used, failed and warned.
    trials
        One row per simulated trial and reported effect: estimate, interval, p-value.
    plan, design
        The plan whose analyses were fitted and the design simulated.
    sims, seed, alpha, factors
        Trials per scenario, root seed, significance level and the effect scale factors
        simulated (0, the null, always first).
    """

    summary: pd.DataFrame
    trials: pd.DataFrame
    plan: Plan
    design: TrialDesign
    sims: int
    seed: int
    alpha: float
    factors: tuple[float, ...]


def default_plan(design: TrialDesign, *, seed: int = 1) -> Plan:
    """The analyses simulated for a bare design: the fidelity LMM and the admission GLMM.

    Fidelity: the pre-specified fidelity analysis (LMM of all reviews with Kenward-Roger
    df, primary; team-level ANCOVA with CR2, sensitivity) of the total. Admission: GLMM
    of the follow-up admissions on arm and stratum (Laplace REML, between-within df).
    """
    analyses: list[dict[str, Any]] = []
    if design.fidelity is not None:
        analyses.append({"name": "fidelity", "outcome": "fidelity",
                         "options": {"method": "lmm", "outcomes": ["total"], "did": False}})
    if design.admitted is not None:
        stratum = " + stratum" if design.strata > 1 else ""
        analyses.append({"name": "admitted-glmm", "fitter": "glmm", "role": "primary",
                         "data": "admissions", "where": {"period": "follow_up"},
                         "formula": f"admitted ~ arm{stratum}",
                         "term": "arm[T.intervention]", "estimand": "odds ratio",
                         "options": {"family": "binomial", "method": "laplace-reml"}})
    plan = parse_plan({"seed": seed, "data": {"example": True}, "analysis": analyses,
                       "output": {"tables": [], "figures": []}}, name="design")
    return replace(plan, design=design)


def _resolve(plan_or_design: Plan | TrialDesign | str | Path) -> tuple[Plan, TrialDesign]:
    if isinstance(plan_or_design, str | Path):
        plan_or_design = load_plan(plan_or_design)
    if isinstance(plan_or_design, TrialDesign):
        seed = plan_or_design.seed if plan_or_design.seed is not None else 1
        return default_plan(plan_or_design, seed=seed), plan_or_design
    if isinstance(plan_or_design, Plan):
        if plan_or_design.design is None:
            raise PlanError(f"the plan {plan_or_design.name!r} has no [design] table; power "
                            "simulation needs one (see docs/power-simulation.md).")
        return plan_or_design, plan_or_design.design
    raise InvalidParameterError(f"plan_or_design must be a Plan, a TrialDesign or a plan file; "
                                f"got {type(plan_or_design).__name__}.")


def _factors(effect_grid: Sequence[float] | None) -> tuple[float, ...]:
    grid = [1.0] if effect_grid is None else list(effect_grid)
    for value in grid:
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
                math.isfinite(value)):
            raise InvalidParameterError(f"effect_grid must hold finite numbers (scale factors "
                                        f"of the design's effects); got {value!r}.")
    return (0.0, *sorted({float(v) for v in grid} - {0.0}))


def _entries(plan: Plan, analyses: Sequence[str] | None) -> tuple[str, ...]:
    names = tuple(a.name for a in plan.analyses)
    if not names:
        raise PlanError(f"the plan {plan.name!r} has no [[analysis]] entry to simulate.")
    if analyses is None:
        return names
    unknown = [a for a in analyses if a not in names]
    if unknown:
        raise InvalidParameterError(f"analyses names {unknown}, which the plan does not have; "
                                    f"it has: {', '.join(names)}.")
    return tuple(analyses)


def _tasks(plan: Plan, design: TrialDesign, factors: Sequence[float], sims: int, seed: int,
           entries: tuple[str, ...], engine: Engine) -> list[Task]:
    size = BATCH_BLOCK if engine == "batched" else BLOCK
    return [Task(plan=plan, design=design.scaled(f), factor=f, seed=seed,
                 trials=tuple(range(start, min(start + size, sims))), entries=entries,
                 engine=engine)
            for f in factors for start in range(0, sims, size)]


def _execute(tasks: list[Task], workers: int, scheduler: Any) -> Iterator[pd.DataFrame]:
    if scheduler is not None:
        from dask.distributed import Client, as_completed

        client = scheduler if isinstance(scheduler, Client) else Client(scheduler)  # type: ignore[no-untyped-call]
        try:
            futures = client.map(run_task, tasks, pure=False)
            done: dict[int, pd.DataFrame] = {}
            order = {f.key: i for i, f in enumerate(futures)}
            for future in as_completed(futures):  # type: ignore[no-untyped-call]
                done[order[future.key]] = future.result()
                yield done[order[future.key]]
        finally:
            if client is not scheduler:
                client.close()  # type: ignore[no-untyped-call]
        return
    if workers == 1:
        yield from map(run_task, tasks)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(run_task, tasks)


def _progress(parts: Iterable[pd.DataFrame], total: int, show: bool) -> list[pd.DataFrame]:
    if not show:
        return list(parts)
    from tqdm import tqdm  # type: ignore[import-untyped]

    return list(tqdm(parts, total=total, desc="crtstats power", unit="block"))


def simulate(
    plan_or_design: Plan | TrialDesign | str | Path,
    *,
    sims: int = 1000,
    workers: int = 1,
    scheduler: Any = None,
    effect_grid: Sequence[float] | None = None,
    analyses: Sequence[str] | None = None,
    alpha: float = 0.05,
    engine: Engine = "tables",
    progress: bool = False,
    on_block: Callable[[pd.DataFrame], None] | None = None,
) -> SimulationResult:
    """Estimate the power of a plan's pre-specified analyses by simulating its design.

    Each simulated trial is drawn from the design through the data model (the four
    tables, see :func:`crtstats.power.simulate_tables`) and analysed by the plan's own
    ``[[analysis]]`` entries, exactly as ``crtstats run`` would analyse real data. The
    same number of trials is simulated under the null (every effect removed), so each
    analysis's type I error is reported beside its power.

    Parameters
    ----------
    plan_or_design
        A plan with a ``[design]`` table (a :class:`~crtstats.runner.Plan` or its file),
        or a bare :class:`TrialDesign`, analysed by :func:`default_plan`.
    sims
        Simulated trials per scenario (the null and each point of ``effect_grid``).
    workers
        Processes on this machine (a :class:`~concurrent.futures.ProcessPoolExecutor`).
    scheduler
        Address of a Dask distributed scheduler, or a ``dask.distributed.Client``: the
        blocks run there instead (needs ``pip install crtstats[power]``).
    effect_grid
        Scale factors of the design's effects (1: as designed; differences multiplied,
        log odds ratios multiplied) for a power curve. Default ``[1.0]``.
    analyses
        Names of the plan's entries to fit (default: all).
    alpha
        Significance level of the tests.
    engine
        ``"tables"`` (default): each entry fitted trial by trial. ``"batched"``: the
        LMM entries on the fidelity total (``fitter = "lmm"``, ``data = "scores"``, no
        ``where``) fitted with :class:`crtstats.models.BatchedLMM` (equal to the
        per-trial fits to about 1e-8) and the admission GLMM (``fitter = "glmm"``,
        ``data = "admissions"``, ``where = { period = "follow_up" }``, ``admitted ~
        arm`` with or without ``+ stratum``) with :class:`crtstats.models.BatchedGLMM`,
        one batch per block and allocation pattern, from the same simulated trials'
        draws (no tables built); other entries trial by trial.
    progress
        Show a progress bar (tqdm) on standard error.
    on_block
        Called with each block's per-trial results as it completes.

    Returns
    -------
    SimulationResult
        The summary per analysis (power, its Monte Carlo SE, type I error, mean
        estimate, coverage) and the per-trial results.

    Raises
    ------
    PlanError
        If the plan has no ``[design]`` or no analyses.
    InvalidParameterError
        If ``sims``, ``workers``, ``alpha``, ``effect_grid``, ``analyses`` or
        ``engine`` is not allowed.

    Notes
    -----
    Trial ``k`` of every scenario draws its data from the child ``k`` of
    ``numpy.random.SeedSequence(seed)`` (the plan's seed, or the design's): results do
    not depend on ``workers`` or ``scheduler``, and the scenarios share random numbers
    (common random numbers), which makes the power curve smooth. Power is the share of
    trials with ``p < alpha``, with Monte Carlo SE ``sqrt(p (1 - p) / n)``; trials whose
    analysis raised an error are counted in ``n_failed`` and left out.

    References
    ----------
    Arnold BF, Hogan DR, Colford JM, Hubbard AE (2011). Simulation methods to estimate
    design power: an overview for applied research. BMC Med Res Methodol 11:94.

    Examples
    --------
    The R equivalent is a loop of ``lmer`` + ``pbkrtest`` over simulated data (or
    ``simr::powerSim``).

    >>> from crtstats.power import FidelityDesign, TrialDesign, simulate
    >>> design = TrialDesign(intervention=6, control=6, admitted=None,
    ...                      fidelity=FidelityDesign(effect={"12m": 10.0}), seed=3)
    >>> res = simulate(design, sims=4)
    >>> res.summary[["analysis", "estimand", "factor"]].head(2).to_string(index=False)
    '...'
    """
    plan, design = _resolve(plan_or_design)
    for name, value, low in (("sims", sims, 1), ("workers", workers, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InvalidParameterError(f"{name} must be a whole number of at least {low}; "
                                        f"got {value!r}.")
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise InvalidParameterError(f"alpha must be between 0 and 1; got {alpha!r}.")
    check_option("engine", engine, ENGINES)
    seed = design.seed if design.seed is not None else plan.seed
    factors = _factors(effect_grid)
    tasks = _tasks(plan, design, factors, sims, seed, _entries(plan, analyses), engine)
    parts = _execute(tasks, workers, scheduler)
    if on_block is not None:
        parts = (_tap(p, on_block) for p in parts)
    blocks = _progress(parts, len(tasks), progress)
    trials = (pd.concat(blocks, ignore_index=True)
              .sort_values(["factor", "trial"], kind="stable").reset_index(drop=True))
    summary = summarise(trials, plan, design, alpha=float(alpha))
    return SimulationResult(summary=summary, trials=trials, plan=plan, design=design, sims=sims,
                       seed=seed, alpha=float(alpha), factors=factors)


def _tap(part: pd.DataFrame, callback: Callable[[pd.DataFrame], None]) -> pd.DataFrame:
    callback(part)
    return part

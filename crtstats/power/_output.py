"""The power table, the power curve and the results folder of ``crtstats power``.

The folder is written through the runner's staging folder (in full or not at all) and
the shared writers (:func:`crtstats.runner.write_table`, :func:`crtstats.runner.save_figure`,
:func:`crtstats.io.write_files`): ``tables/power.*`` in the plan's table formats,
``figures/power_curve.*``, ``power_trials.csv`` (one row per simulated trial and
effect) and ``manifest.json`` (plan hash, seed, trials, scale factors, versions).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from crtstats.io import neutralise_formulas
from crtstats.plots import power_curve
from crtstats.power._simulate import SimulationResult
from crtstats.runner import (
    ResultsLock,
    Staging,
    check_destination,
    dump_json,
    results_folder,
    save_figure,
    versions,
    write_table,
)
from crtstats.tables import Column, Table

__all__ = ["power_table", "write_power"]


def power_table(result: SimulationResult) -> Table:
    """The power table: per analysis and scale factor, power and type I error with SEs.

    Examples
    --------
    >>> from crtstats.power import FidelityDesign, TrialDesign, simulate
    >>> res = simulate(TrialDesign(intervention=4, control=4, admitted=None, seed=1),
    ...                sims=2)
    >>> power_table(res).data["power"].between(0, 1).all()
    np.True_
    """
    data = result.summary[result.summary["factor"] != 0]
    data = data.assign(
        true_text=[f"{v:.3f}" if math.isfinite(v) else "not applicable"
                   for v in data["true_effect"].astype(float)],
        coverage_text=[f"{v:.3f}" if math.isfinite(v) else "not applicable"
                       for v in data["coverage"].astype(float)])
    order = {o: i for i, o in enumerate(dict.fromkeys(data["outcome"]))}
    data = (data.assign(_order=data["outcome"].map(order))
            .sort_values(["_order", "factor"], kind="stable")
            .drop(columns="_order").reset_index(drop=True))
    columns = [
        Column("Analysis", ("analysis",), "text"),
        Column("Role", ("role",), "text"),
        Column("Estimand", ("estimand",), "text"),
        Column("Effect scale factor", ("factor",), "number", decimals=2),
        Column("True effect", ("true_text",), "text"),
        Column("Power", ("power",), "number", decimals=3),
        Column("MC SE", ("power_mcse",), "number", decimals=3, key="power_se"),
        Column("Type I error", ("type1_error",), "number", decimals=3),
        Column("MC SE", ("type1_mcse",), "number", decimals=3, key="type1_se"),
        Column("Mean estimate", ("mean_estimate",), "number", decimals=3),
        Column("Coverage", ("coverage_text",), "text"),
        Column("Trials", ("n_sims",), "integer"),
        Column("Failed", ("n_failed",), "integer"),
    ]
    notes = [
        f"{result.sims} simulated trials per scenario and as many under the null (every "
        f"effect removed), seed {result.seed}; tests at alpha = {result.alpha:g}.",
        "MC SE: Monte Carlo standard error sqrt(p (1 - p) / trials). Mean estimate: "
        "geometric mean for ratios. True effect: the estimand's value in the design "
        "(marginal risk differences, risk ratios and odds ratios by Gauss-Hermite "
        "quadrature over the team effects). Coverage of the true effect by the 95% "
        "interval.",
        *_not_applicable(data),
    ]
    return Table(data, columns, title="Simulated power of the planned analyses",
                 row_group="outcome", footnotes=notes, na_rep="")


def _not_applicable(data: Any) -> list[str]:
    """One footnote per analysis and estimand whose true effect or coverage is not
    applicable, with the reason."""
    notes = []
    for _, row in data.drop_duplicates(["analysis", "estimand"]).iterrows():
        which = f"{row['analysis']}, {row['estimand']}"
        if not math.isfinite(float(row["true_effect"])):
            reason = str(row["truth"]).removeprefix("not applicable: ")
            notes.append(f"True effect and coverage not applicable for {which}: {reason}.")
        elif not math.isfinite(float(row["coverage"])):
            reason = str(row["coverage_note"]).removeprefix("not applicable: ")
            notes.append(f"Coverage not applicable for {which}: {reason}.")
    return notes


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _manifest(result: SimulationResult, written: list[str]) -> dict[str, Any]:
    return {
        "plan": {"name": result.plan.name, "sha256": result.plan.sha256},
        "design": _jsonable(result.design), "seed": result.seed, "sims": result.sims,
        "alpha": result.alpha, "factors": list(result.factors),
        "analyses": sorted(set(result.trials["entry"])), "files": written,
        "versions": versions(),
    }


def write_power(result: SimulationResult, out: str | Path, *, force: bool = False,
                lock: bool = True) -> Path:
    """Write the results folder of a power simulation (see the module notes).

    Parameters
    ----------
    result
        What :func:`crtstats.power.simulate` returned.
    out
        The folder to write; replaced only with ``force`` and only if it is a crtstats
        results folder.
    force
        Replace an existing results folder.
    lock
        Take the results folder's lock (:class:`crtstats.runner.ResultsLock`) while
        writing; ``False`` when the caller already holds it, as ``crtstats power`` does
        from before the simulation so that a second run into the same folder fails at
        once.

    Returns
    -------
    Path
        The folder written.

    Raises
    ------
    FileExistsError
        If ``out`` exists (without ``force``) or is not a results folder.
    OutputPathError
        If ``out`` is or holds the plan file, or another run holds its lock.
    """
    out = Path(out)
    if lock:
        with ResultsLock(results_folder(out)):
            return write_power(result, out, force=force, lock=False)
    plan_file = [result.plan.path] if result.plan.path is not None else []
    check_destination(out, force=force, inputs=plan_file)
    output = result.plan.output
    with Staging(out) as staging:
        written = [p.relative_to(staging.root).as_posix() for p in write_table(
            power_table(result), staging.folder("tables"), "power",
            formats=output.table_formats).values()]
        ax = power_curve(result.summary, alpha=result.alpha)
        written += [p.relative_to(staging.root).as_posix() for p in save_figure(
            ax, staging.folder("figures") / "power_curve",
            formats=output.figure_formats).values()]
        for name, frame in (("power_trials.csv", result.trials),
                            ("power_summary.csv", result.summary)):
            staging.write_text(name, neutralise_formulas(frame).to_csv(
                index=False, lineterminator="\n"))
        written += ["power_summary.csv", "power_trials.csv"]
        staging.write_text("manifest.json", dump_json(_manifest(result, written)))
        staging.commit(force=force)
    return out

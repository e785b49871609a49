"""Run an analysis plan and write its results folder atomically."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from crtstats.analysis import EFFECT_COLUMNS
from crtstats.exceptions import OutputNotAvailableError
from crtstats.runner._analyses import AnalysisRun, fit_analysis
from crtstats.runner._capability import naming_the_entry
from crtstats.runner._effects import primary_outcomes, with_outcome_roles
from crtstats.runner._manifest import (
    MANIFEST_VERSION,
    TIMESTAMP_FIELD,
    RecordedWarning,
    file_record,
    fit_record,
    input_record,
    record_warnings,
    versions,
)
from crtstats.runner._output import (
    ResultsLock,
    check_destination,
    clean_leftovers,
    results_folder,
    write_results,
)
from crtstats.runner._plan import AnalysisSpec, Plan, load_plan, parse_plan
from crtstats.runner._products import RunObjects, build_figure, build_table, change_review
from crtstats.runner._stages import (
    QuestionnaireScoring,
    TrialInputs,
    analysis_frames,
    load_inputs,
    questionnaire_scorings,
    score,
    score_questionnaires,
)
from crtstats.tables import Table
from crtstats.trial import TrialData

__all__ = ["RunResult", "run"]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class RunResult:
    """What a run produced.

    Attributes
    ----------
    out
        The results folder.
    plan
        The plan that was run.
    trial
        The validated trial (:class:`~crtstats.TrialData`).
    scores
        The fidelity scores, or None when the plan uses none.
    analyses
        Each ``[[analysis]]`` entry's effects, fits, notes and warnings, by name.
    effects
        Every analysis's effect rows in one frame (columns of ``EFFECT_COLUMNS``).
    tables
        The tables written, by name (:class:`crtstats.tables.Table`).
    figures
        The figures written, by name (matplotlib ``Figure`` objects).
    manifest
        The manifest as written to ``manifest.json``.
    warnings
        Every warning raised during the run, with the stage that raised it.
    questionnaires
        The scored questionnaire tables (:func:`crtstats.scales.score_questionnaire`),
        by table name, as the tables and figures use them.
    """

    out: Path
    plan: Plan
    trial: TrialData | None
    scores: pd.DataFrame | None
    analyses: Mapping[str, AnalysisRun]
    effects: pd.DataFrame
    tables: Mapping[str, Table]
    figures: Mapping[str, Figure]
    manifest: Mapping[str, Any]
    warnings: tuple[RecordedWarning, ...]
    questionnaires: Mapping[str, pd.DataFrame] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"RunResult(out={str(self.out)!r}, analyses={list(self.analyses)}, "
                f"effects={len(self.effects)} rows, tables={list(self.tables)}, "
                f"figures={list(self.figures)}, warnings={len(self.warnings)})")


def _fit_role(spec: AnalysisSpec, done: AnalysisRun, fit_name: str) -> str | None:
    """The role of one fit: the entry's, or that of the effect rows the fit produced.

    Named trial analyses key their fits ``"<outcome>: <analysis>..."``; the rows of the
    effects frame with that outcome and analysis give the role.
    """
    if spec.role is not None:
        return spec.role
    effects = done.effects
    keys = effects["outcome"].astype(str) + ": " + effects["analysis"].astype(str)
    roles = {str(r) for k, r in zip(keys, effects["role"], strict=True)
             if fit_name.startswith(k)}
    if "primary" in roles:  # a primary fit's estimands at other time points are secondary
        return "primary"
    return roles.pop() if len(roles) == 1 else None


def _spec_record(spec: AnalysisSpec, done: AnalysisRun) -> dict[str, Any]:
    record: dict[str, Any] = {"role": spec.role, "label": spec.label}
    if spec.fitter is not None:
        record.update(fitter=spec.fitter, formula=spec.formula, data=spec.source,
                      cluster=spec.cluster, where=dict(spec.where))
        if spec.term is not None or spec.contrast:
            record["estimand"] = dict(spec.contrast) or {spec.term: 1.0}
    else:
        record["outcome"] = spec.outcome
    record["options"] = dict(done.options)
    record["seed"] = done.seed
    record["fits"] = [{**fit_record(name, fit), "role": _fit_role(spec, done, name)}
                      for name, fit in done.fits.items()]
    methods = ["outcome", "analysis", "estimand", "role", "scale", "df_method", "cov_type"]
    methods += ["outcome_role"] if "outcome_role" in done.effects.columns else []
    record["effects"] = [{k: str(v) for k, v in row.items()}
                         for row in done.effects[methods].to_dict("records")]
    record["warnings"] = [w.to_dict() for w in done.warnings]
    record["notes"] = list(done.notes)
    return record


def _manifest(
    plan: Plan, inputs: TrialInputs, runs: Mapping[str, AnalysisRun],
    warnings: list[RecordedWarning], files: Mapping[str, str],
    not_possible: list[dict[str, str]], scorings: Mapping[str, QuestionnaireScoring],
) -> dict[str, Any]:
    return {
        "manifest_version": MANIFEST_VERSION,
        TIMESTAMP_FIELD: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "plan": {"file": plan.name, "sha256": plan.sha256, "title": plan.title},
        "data": {"example": plan.data.example, "validated": inputs.trial is not None,
                 "notes": list(inputs.notes)},
        "inputs": _inputs(plan, inputs),
        "scoring": {"scale": plan.scale, "max_missing": plan.max_missing,
                    "questionnaires": {t: q.record() for t, q in scorings.items()}},
        "primary": _primary_record(plan, runs),
        "seeds": {"plan": plan.seed, "analyses": {n: r.seed for n, r in runs.items()}},
        "analyses": {name: _spec_record(r.spec, r) for name, r in runs.items()},
        "outputs": {"tables": list(plan.output.tables), "figures": list(plan.output.figures),
                    "table_formats": list(plan.output.table_formats),
                    "figure_formats": list(plan.output.figure_formats),
                    "suppress_below": plan.output.suppress_below, "files": dict(files)},
        "not_possible": list(not_possible),
        "warnings": [w.to_dict() for w in warnings],
        "versions": versions(),
    }


def _inputs(plan: Plan, inputs: TrialInputs) -> dict[str, Any]:
    """Every input file: the tables (name, sha256, rows, column mapping), the mapping
    file and any instrument key file beside the plan (name and sha256)."""
    record = {name: input_record(p, plan.data.columns.get(name))
              for name, p in inputs.provenance.items()}
    if plan.data.mapping_file is not None:
        record["mapping"] = file_record(plan.data.mapping_file)
    for spec in plan.analyses:
        if spec.instrument_file is not None:
            record[f"instrument {spec.instrument_file.stem}"] = file_record(
                spec.instrument_file)
    return record


def _primary_record(plan: Plan, runs: Mapping[str, AnalysisRun]) -> dict[str, Any] | None:
    if plan.primary is None:
        return None
    run = runs[plan.primary]
    return {"analysis": plan.primary, "label": run.spec.label,
            "outcomes": list(primary_outcomes(run.effects)) if len(run.effects) else []}


def _with_outcome_roles(plan: Plan, runs: dict[str, AnalysisRun]) -> dict[str, AnalysisRun]:
    """Each run's effects with ``outcome_role``, when the plan names its primary."""
    if plan.primary is None:
        return runs
    outcomes = primary_outcomes(runs[plan.primary].effects)
    return {name: replace(r, effects=with_outcome_roles(r.effects, outcomes))
            for name, r in runs.items()}


def _effects(runs: Mapping[str, AnalysisRun]) -> pd.DataFrame:
    frames = [r.effects for r in runs.values() if len(r.effects)]
    if not frames:
        return pd.DataFrame(columns=list(EFFECT_COLUMNS))
    effects = pd.concat(frames, ignore_index=True)
    if "outcome_role" not in effects.columns:
        return effects[list(EFFECT_COLUMNS)]
    columns = list(EFFECT_COLUMNS)
    columns.insert(columns.index("role") + 1, "outcome_role")
    # the primary outcome's rows first, whichever analysis gave them
    primary = (effects["outcome_role"] == "primary").to_numpy()
    order = sorted(range(len(effects)), key=lambda k: not primary[k])
    return effects.iloc[order].reset_index(drop=True)[columns]


def _fit_all(
    plan: Plan, inputs: TrialInputs, scores: pd.DataFrame | None,
    sink: list[RecordedWarning], say: Progress,
) -> dict[str, AnalysisRun]:
    """Fit every ``[[analysis]]`` entry in plan order; their warnings join ``sink``."""
    frames = analysis_frames(inputs, scores, plan=plan)
    named_inputs = {"trial": inputs.trial, "scores": scores, "teams": frames["teams"]}
    runs: dict[str, AnalysisRun] = {}
    for number, spec in enumerate(plan.analyses, start=1):
        say(f"fitting {spec.name} ({number} of {len(plan.analyses)})")
        runs[spec.name] = fit_analysis(spec, frames=frames, inputs=named_inputs,
                                       seed=plan.seed)
        sink.extend(runs[spec.name].warnings)
    return runs


def _figures(plan: Plan, objects: RunObjects, sink: list[RecordedWarning],
             not_possible: list[dict[str, str]]) -> dict[str, Figure]:
    figures: dict[str, Figure] = {}
    for name in plan.output.figures:
        with (record_warnings(f"figure {name}", sink), naming_the_entry(f"figure {name!r}"),
              _unless_default(plan, "figure", name, not_possible)):
            figure = Figure(figsize=(7.0, 4.5), layout="constrained")
            build_figure(name, objects, figure)
            figures[name] = figure
    return figures


@contextmanager
def _unless_default(plan: Plan, kind: str, name: str,
                    not_possible: list[dict[str, str]]) -> Iterator[None]:
    """Leave out a default table or figure the trial cannot support, recording why.

    One the plan lists by name is an error instead (:class:`OutputNotAvailableError`).
    """
    try:
        yield
    except OutputNotAvailableError as err:
        if name in plan.output.chosen:
            raise
        reason = str(err).split(": ", 1)[-1].replace("; remove it from [output].", ".")
        not_possible.append({"what": f"{kind} {name!r}", "reason": reason})


def _adapted(plan: Plan, objects: RunObjects) -> list[dict[str, str]]:
    """Default tables that a partial trial changes, and how."""
    if "item_change" not in plan.output.tables or objects.tables.get("fidelity") is None:
        return []
    try:
        _, note = change_review(objects)
    except OutputNotAvailableError:
        return []  # build_table raises it again, in its place
    return [] if note is None else [{"what": "table 'item_change'", "reason": note}]


def _analyses_not_possible(runs: Mapping[str, AnalysisRun]) -> list[dict[str, str]]:
    return [{"what": f"analysis {name!r}", "reason": r.not_possible}
            for name, r in runs.items() if r.not_possible is not None]


def run(
    plan: str | Path | Plan | Mapping[str, Any], *, out: str | Path, force: bool = False,
    progress: Progress | None = None,
) -> RunResult:
    """Run the analysis plan ``plan`` and write its results into the folder ``out``.

    Parameters
    ----------
    plan
        The plan file (TOML), a plan from :func:`load_plan` or :func:`parse_plan`, or
        the plan's tables as a mapping (data paths then relative to the working folder).
    out
        The results folder to write: ``tables/``, ``figures/``, ``report.html`` and
        ``manifest.json``.
    force
        Replace ``out`` if it exists (only if it is a crtstats results folder).
    progress
        Called with a short message as each stage starts (the command line passes a
        printer when stderr is a terminal); None for silence.

    Returns
    -------
    RunResult
        The results, tables, figures and manifest, for scripts and notebooks.

    Raises
    ------
    PlanError
        If the plan is malformed or asks for something this crtstats cannot do.
    SchemaValidationError
        If the data fail validation.
    FileExistsError
        If ``out`` exists and ``force`` is false, or is not a results folder.
    OutputPathError
        If ``out`` is or holds an input, or another run is writing it (at once, before
        any work).

    Notes
    -----
    Every result is computed before anything is written. The folder is then built in a
    hidden staging folder beside ``out`` and moved into place in one rename, so a
    failed run leaves nothing half-written and an old results folder is kept until
    the new one is complete. The folder gets the user's usual permissions; a symbolic
    link given as ``out`` is followed (the folder it points to is replaced and the link
    kept). A lock file beside ``out`` is held from the start, so a second run into the
    same folder fails at once; staging folders left by a killed run are removed.
    Two runs of the same plan on the same data write
    byte-identical tables and manifests except for the manifest's ``created_utc``.

    The manifest records, for every fitted model and every reported effect, the
    degrees-of-freedom method and covariance estimator, so the report can state how
    clustering and small-sample inference were handled, as the CONSORT extension for
    cluster trials asks.

    References
    ----------
    Campbell MK, Piaggio G, Elbourne DR, Altman DG (2012). CONSORT 2010 statement:
    extension to cluster randomised trials. *BMJ* 345:e5661.

    Examples
    --------
    In R the same job is a ``targets`` pipeline of ``lmerTest``, ``glmmTMB``,
    ``geepack`` and ``gtsummary`` calls. A plan that only validates and summarises the
    example trial:

    >>> import tempfile
    >>> plan = {"seed": 1, "data": {"example": True},
    ...         "output": {"tables": ["data_summary"], "figures": [], "table_formats": ["csv"]}}
    >>> out = Path(tempfile.mkdtemp()) / "results"
    >>> result = run(plan, out=out)
    >>> sorted(p.name for p in out.iterdir())
    ['manifest.json', 'report.html', 'tables']
    >>> result.manifest["inputs"]["teams"]["rows"]
    25
    >>> result
    RunResult(out='...results', analyses=[], effects=0 rows, tables=['data_summary'],
              figures=[], warnings=0)

    The shipped plan: ``crtstats.run("analyses/core_trial.toml", out="results")``.
    """
    say: Progress = progress or (lambda message: None)
    if isinstance(plan, Mapping):
        plan = parse_plan(plan)
    elif not isinstance(plan, Plan):
        plan = load_plan(plan)
    folder = results_folder(out)
    sources = [] if plan.data.example else list(plan.data.files.values())
    sources += [p for p in (plan.data.mapping_file,
                            *(a.instrument_file for a in plan.analyses)) if p is not None]
    with ResultsLock(folder):
        for message in clean_leftovers(folder):
            say(message)
        check_destination(folder, force=force,
                          inputs=[*sources, *([plan.path] if plan.path is not None else [])])
        return _run_locked(plan, Path(out), folder, force=force, say=say)


def _run_locked(plan: Plan, out: Path, folder: Path, *, force: bool, say: Progress
                ) -> RunResult:
    """Every stage of :func:`run`, once the results folder is locked and checked."""
    sink: list[RecordedWarning] = []
    say("reading and validating the data")
    with record_warnings("data", sink):
        inputs = load_inputs(plan)
    with record_warnings("scoring", sink):
        scores = score(plan, inputs)
        questionnaires = score_questionnaires(plan, inputs)
    runs = _with_outcome_roles(plan, _fit_all(plan, inputs, scores, sink, say))
    effects = _effects(runs)
    scorings = questionnaire_scorings(plan, questionnaires)
    objects = RunObjects(
        trial=inputs.trial, tables=inputs.tables, scores=scores, effects=effects,
        fits={n: f for r in runs.values() for n, f in r.fits.items()},
        suppress_below=plan.output.suppress_below, questionnaires=questionnaires,
        instruments={t: q.key for t, q in scorings.items()},
        scorings={t: q.scoring for t, q in scorings.items() if q.scoring is not None},
    )
    say("building tables and figures")
    tables: dict[str, Table] = {}
    not_possible = _analyses_not_possible(runs) + _adapted(plan, objects)
    for name in plan.output.tables:
        with (record_warnings(f"table {name}", sink), naming_the_entry(f"table {name!r}"),
              _unless_default(plan, "table", name, not_possible)):
            tables[name] = build_table(name, objects, inputs.provenance)
    figures = _figures(plan, objects, sink, not_possible)
    say(f"writing {out}")
    manifest = write_results(folder, plan=plan, tables=tables, figures=figures,
                             warnings=sink, force=force,
                             manifest=lambda files: _manifest(plan, inputs, runs, sink, files,
                                                              not_possible, scorings))
    return RunResult(out=out, plan=plan, trial=inputs.trial, scores=scores, analyses=runs,
                     effects=effects, tables=tables, figures=figures, manifest=manifest,
                     warnings=tuple(sink), questionnaires=questionnaires)

"""The data stages of a run: read and validate the trial, score, build frames.

Reading and validation go through :func:`crtstats.load_trial` (which also records each
file's name, sha256 and row count); scoring through :func:`crtstats.score_fidelity`
and, for the questionnaire tables, :func:`crtstats.scales.score_questionnaire` with the
instrument, scoring and missing-item rule of the plan's first questionnaire analysis of
each table. The analysis frames are the validated tables joined to the team table's
columns, with time-ordered factors for ``review`` and ``period``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crtstats.datasets import example_paths
from crtstats.io import TABLES
from crtstats.runner._plan import AnalysisSpec, Plan
from crtstats.runner._questionnaire_plan import QUESTIONNAIRE_TABLES
from crtstats.scales import fidelity_change, load_instrument, score_fidelity, score_questionnaire
from crtstats.schema import field_levels
from crtstats.trial import TrialData, load_trial

__all__ = ["DEFAULT_INSTRUMENTS", "QuestionnaireScoring", "TrialInputs", "analysis_frames",
           "load_inputs", "needs_scores", "questionnaire_scorings", "score",
           "score_questionnaires"]

#: The instrument a questionnaire table is scored with when no analysis of the plan names
#: it (for the flow and baseline tables): the CORE trial's.
DEFAULT_INSTRUMENTS = {"user_questionnaires": "csq8", "staff_questionnaires": "ghq12"}

#: Columns whose levels have a time order; they become ordered factors in that order.
_TIME_ORDERED = {"fidelity": "review", "admissions": "period", "service_use": "period"}


@dataclass(frozen=True)
class TrialInputs:
    """The trial as read and validated.

    Attributes
    ----------
    provenance
        Each input file's name, sha256 and row count, by table name.
    tables
        The validated tables by name (``service_use`` derived from ``admissions`` when
        only admissions were given and the trial derives it).
    trial
        The :class:`~crtstats.TrialData` returned by :func:`crtstats.load_trial`.
    """

    provenance: Mapping[str, Mapping[str, Any]]
    tables: Mapping[str, pd.DataFrame]
    trial: TrialData | None = None
    notes: tuple[str, ...] = field(default=())


def _paths(plan: Plan) -> dict[str, Path]:
    if plan.data.example:
        return example_paths()
    return dict(plan.data.files)


def needs_scores(plan: Plan) -> bool:
    """Whether anything in the plan uses the fidelity scores."""
    return (
        any(a.outcome == "fidelity" or a.source in ("scores", "change")
            for a in plan.analyses)
        or "fidelity_by_arm" in plan.output.tables
        or bool({"trajectories", "domain_profile"} & set(plan.output.figures))
    )


def load_inputs(plan: Plan) -> TrialInputs:
    """Read every file the plan names and validate them together as one trial.

    Raises
    ------
    DataFileError
        If a file is missing or unreadable.
    SchemaValidationError
        If the data fail validation (every problem at once, in ``failure_cases``).
    """
    paths = _paths(plan)
    trial = load_trial(**paths, columns=plan.data.mapping)
    tables = {name: frame for name in TABLES
              if (frame := getattr(trial, name, None)) is not None}
    derived = "service_use was derived from admissions (counts per team and period)."
    notes: tuple[str, ...] = (derived,) if getattr(trial, "service_use_derived", False) else ()
    if trial.mapping:  # the "Data mapping" paragraph of the report's methods
        source = plan.data.mapping_file
        declared = "as declared in the plan" if source is None else (
            f"as declared in {source.name}, sha256 "
            f"{hashlib.sha256(source.read_bytes()).hexdigest()}")
        notes += (f"Data mapping (every recoding applied, {declared}): "
                  + "; ".join(trial.mapping_lines()) + ".",)
    notes += tuple(f"{detail}." for detail in trial.exclusions["detail"])
    provenance = {name: dict(trial.provenance[name]) for name in paths
                  if name in trial.provenance}
    return TrialInputs(provenance=provenance, tables=tables, trial=trial, notes=notes)


def score(plan: Plan, inputs: TrialInputs) -> pd.DataFrame | None:
    """Score the fidelity reviews with the plan's scale key.

    Returns None when the trial has no fidelity data or nothing in the plan uses scores.

    Raises
    ------
    SchemaValidationError
        If an item score is out of the scale's range.
    """
    if "fidelity" not in inputs.tables or not needs_scores(plan):
        return None
    scores: pd.DataFrame = score_fidelity(
        inputs.tables["fidelity"], scale=plan.scale, max_missing=plan.max_missing
    )
    return scores


def _time_order(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    column = _TIME_ORDERED.get(table)
    if column is None or column not in frame.columns:
        return frame
    if isinstance(frame[column].dtype, pd.CategoricalDtype):
        return frame
    levels = list(field_levels(table, column))
    out = frame.copy()
    out[column] = pd.Categorical(frame[column].astype("string"), categories=levels,
                                 ordered=True)
    return out


def _with_team_columns(frame: pd.DataFrame, teams: pd.DataFrame) -> pd.DataFrame:
    extra = [c for c in teams.columns if c == "team_id" or c not in frame.columns]
    return frame.merge(teams[extra], on="team_id", how="left", validate="many_to_one",
                       sort=False)


def analysis_frames(
    inputs: TrialInputs, scores: pd.DataFrame | None, *, plan: Plan | None = None,
) -> dict[str, pd.DataFrame]:
    """The frames a plan's ``[[analysis]]`` entries may name with ``data = ...``.

    ``teams`` as validated; ``scores`` (the fidelity scores), ``admissions`` and
    ``service_use`` each joined to the team table's columns (arm, stratum...) by
    ``team_id``. ``review`` and ``period`` are ordered factors in time order (baseline,
    6m, 12m; pre, follow_up), so their first level is the reference; ``arm`` keeps its
    text values, so ``control`` (first in sorted order) is the reference.
    ``service_use`` gains ``log_n_users``, the log of the exposure, for use as an
    offset (validation has checked that ``n_users`` is positive). ``change`` (one row
    per team: :func:`crtstats.fidelity_change` from baseline to 12 months, e.g.
    ``total_from``, ``total_to``, ``total_change``, with the team columns) is built
    only when an analysis of ``plan`` names it.
    """
    teams = inputs.tables["teams"]
    frames = {"teams": teams}
    if scores is not None:
        frames["scores"] = _time_order(_with_team_columns(scores, teams), "fidelity")
    for name in ("admissions", "service_use"):
        if name in inputs.tables:
            frames[name] = _time_order(_with_team_columns(inputs.tables[name], teams), name)
    if "service_use" in frames and "log_n_users" not in frames["service_use"].columns:
        users = frames["service_use"]["n_users"].astype("float64")
        frames["service_use"]["log_n_users"] = np.log(users.to_numpy())
    if scores is not None and plan is not None and any(
            a.source == "change" for a in plan.analyses):
        wide = fidelity_change(scores, from_review="baseline", to_review="12m", scale=plan.scale)
        frames["change"] = _with_team_columns(wide, teams)
    return frames


@dataclass(frozen=True)
class QuestionnaireScoring:
    """How a run scores one questionnaire table.

    Attributes
    ----------
    table
        ``user_questionnaires`` or ``staff_questionnaires``.
    instrument
        The instrument key as the plan names it (a shipped key or a key file's name).
    scoring
        The key's scoring (None: its first).
    max_missing, prorate
        The missing-item rule: totals prorated over up to ``max_missing`` missing items
        only when ``prorate``; otherwise no total where any item is missing.
    analysis
        The plan analysis these come from (None: the defaults, no analysis names the
        table).
    instrument_file
        The key file, when ``instrument`` names one (resolved against the plan).
    """

    table: str
    instrument: str
    scoring: str | None = None
    max_missing: int = 0
    prorate: bool = False
    analysis: str | None = None
    instrument_file: Path | None = None

    @property
    def key(self) -> str:
        """What :func:`crtstats.scales.load_instrument` is given."""
        return str(self.instrument_file) if self.instrument_file else self.instrument

    def record(self) -> dict[str, Any]:
        """The manifest entry: instrument, scoring (by name), missing-item rule, analysis."""
        key = load_instrument(self.key)
        scoring = key.scoring(self.scoring)
        return {"instrument": self.instrument, "title": key.title, "scoring": scoring.name,
                "total_range": [scoring.total_min, scoring.total_max],
                "caseness_threshold": scoring.caseness_threshold,
                "max_missing": self.max_missing, "prorate": self.prorate,
                "analysis": self.analysis}


def _scoring_of(spec: AnalysisSpec) -> QuestionnaireScoring:
    options = spec.options
    scoring = options.get("scoring")
    return QuestionnaireScoring(
        table=str(options.get("table", "user_questionnaires")),
        instrument=str(options.get("instrument", "csq8")),
        scoring=None if scoring is None else str(scoring),
        max_missing=int(options.get("max_missing", 0)),  # type: ignore[arg-type]
        prorate=bool(options.get("prorate", False)), analysis=spec.name,
        instrument_file=spec.instrument_file)


def questionnaire_scorings(plan: Plan, tables: Mapping[str, Any]
                           ) -> dict[str, QuestionnaireScoring]:
    """How each questionnaire table in ``tables`` is scored for the run's tables.

    The first questionnaire analysis of the plan that names a table sets its
    instrument, scoring and missing-item rule; a table that no analysis names is scored
    with :data:`DEFAULT_INSTRUMENTS` and the key's defaults.
    """
    chosen: dict[str, QuestionnaireScoring] = {}
    for spec in plan.analyses:
        if spec.outcome == "questionnaire":
            scoring = _scoring_of(spec)
            chosen.setdefault(scoring.table, scoring)
    return {table: chosen.get(table, QuestionnaireScoring(table, DEFAULT_INSTRUMENTS[table]))
            for table in QUESTIONNAIRE_TABLES if table in tables}


def score_questionnaires(plan: Plan, inputs: TrialInputs) -> dict[str, pd.DataFrame]:
    """Score the trial's questionnaire tables as :func:`questionnaire_scorings` says.

    A table that no analysis names and whose columns are not those of the default
    instrument (a trial with another staff questionnaire) is left unscored.

    Raises
    ------
    SchemaValidationError
        If an item score is outside the instrument's range.
    """
    scored: dict[str, pd.DataFrame] = {}
    for table, how in questionnaire_scorings(plan, inputs.tables).items():
        frame = inputs.tables[table]
        key = load_instrument(how.key)
        if how.analysis is None and not set(key.columns) <= set(frame.columns):
            continue
        scored[table] = score_questionnaire(frame, key, scoring=how.scoring,
                                            max_missing=how.max_missing, prorate=how.prorate)
    return scored

"""The data stages of a run: read and validate the trial, score fidelity, build frames.

Reading goes through :func:`crtstats.io.read_table` (for each file's sha256 and row
count) and validation through :func:`crtstats.load_trial`; scoring through
:func:`crtstats.score_fidelity`. The analysis frames are the validated tables joined to
the team table's columns, with time-ordered factors for ``review`` and ``period``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from crtstats.datasets import example_paths
from crtstats.io import TABLES, TableFile, load_schema, read_table
from crtstats.runner._capability import capability, has_capability
from crtstats.runner._plan import Plan

__all__ = ["TrialInputs", "analysis_frames", "load_inputs", "needs_scores", "score"]

#: Columns whose levels have a time order; they become ordered factors in that order.
_TIME_ORDERED = {"fidelity": "review", "admissions": "period", "service_use": "period"}


@dataclass(frozen=True)
class TrialInputs:
    """The trial as read and validated.

    Attributes
    ----------
    files
        Each input file with its provenance (sha256, rows), by table name.
    tables
        The validated tables by name (``service_use`` derived from ``admissions`` when
        only admissions were given and the trial derives it).
    trial
        The :class:`~crtstats.TrialData` returned by :func:`crtstats.load_trial`.
    """

    files: Mapping[str, TableFile]
    tables: Mapping[str, pd.DataFrame]
    trial: Any = None
    notes: tuple[str, ...] = field(default=())


def _paths(plan: Plan) -> dict[str, Path]:
    if plan.data.example:
        return example_paths()
    return dict(plan.data.files)


def _summary_only(plan: Plan) -> bool:
    """Whether the plan asks for nothing beyond the data summary."""
    output = plan.output
    return not plan.analyses and set(output.tables) <= {"data_summary"} and not output.figures


def needs_scores(plan: Plan) -> bool:
    """Whether anything in the plan uses the fidelity scores."""
    return (
        any(a.outcome == "fidelity" or a.source == "scores" for a in plan.analyses)
        or bool({"fidelity_by_arm", "item_change"} & set(plan.output.tables))
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
    PlanError
        If validation is not available in this version of crtstats.
    """
    paths = _paths(plan)
    files = {name: read_table(path, table=name) for name, path in paths.items()}
    if not has_capability("crtstats", "load_trial") and _summary_only(plan):
        note = ("The data were read but not validated: this version of crtstats has no "
                "crtstats.load_trial.")
        raw = {name: f.data for name, f in files.items()}
        return TrialInputs(files=files, tables=raw, notes=(note,))
    load_trial = capability("crtstats", "load_trial", wanted_by="validating the data")
    columns = {t: dict(m) for t, m in plan.data.columns.items()}
    trial = load_trial(**{name: path for name, path in paths.items()},
                       columns=columns or None)
    tables: dict[str, pd.DataFrame] = {}
    for name in TABLES:
        frame = getattr(trial, name, None)
        if frame is None and name == "service_use":
            frame = getattr(trial, "service_use_derived", None)
        if frame is not None:
            tables[name] = frame
    return TrialInputs(files=files, tables=tables, trial=trial)


def score(plan: Plan, inputs: TrialInputs) -> pd.DataFrame | None:
    """Score the fidelity reviews with the plan's scale key.

    Returns None when the trial has no fidelity data or nothing in the plan uses scores.

    Raises
    ------
    PlanError
        If scoring is not available in this version of crtstats.
    SchemaValidationError
        If an item score is out of the scale's range.
    """
    if "fidelity" not in inputs.tables or not needs_scores(plan):
        return None
    score_fidelity = capability("crtstats", "score_fidelity", wanted_by="scoring fidelity")
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
    levels = next(f["constraints"]["enum"] for f in load_schema(table)["fields"]
                  if f["name"] == column)
    out = frame.copy()
    out[column] = pd.Categorical(frame[column].astype("string"), categories=levels,
                                 ordered=True)
    return out


def _with_team_columns(frame: pd.DataFrame, teams: pd.DataFrame) -> pd.DataFrame:
    extra = [c for c in teams.columns if c == "team_id" or c not in frame.columns]
    return frame.merge(teams[extra], on="team_id", how="left", validate="many_to_one",
                       sort=False)


def analysis_frames(
    inputs: TrialInputs, scores: pd.DataFrame | None,
) -> dict[str, pd.DataFrame]:
    """The frames a plan's ``[[analysis]]`` entries may name with ``data = ...``.

    ``teams`` as validated; ``scores`` (the fidelity scores), ``admissions`` and
    ``service_use`` each joined to the team table's columns (arm, stratum...) by
    ``team_id``. ``review`` and ``period`` are ordered factors in time order (baseline,
    6m, 12m; pre, follow_up), so their first level is the reference; ``arm`` keeps its
    text values, so ``control`` (first in sorted order) is the reference.
    """
    teams = inputs.tables["teams"]
    frames = {"teams": teams}
    if scores is not None:
        frames["scores"] = _time_order(_with_team_columns(scores, teams), "fidelity")
    for name in ("admissions", "service_use"):
        if name in inputs.tables:
            frames[name] = _time_order(_with_team_columns(inputs.tables[name], teams), name)
    return frames

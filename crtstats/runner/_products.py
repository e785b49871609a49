"""Building the tables and figures a plan asks for, with the public builders of crtstats.

Each table or figure name in ``[output]`` maps to one public function of
:mod:`crtstats.tables` or :mod:`crtstats.plots` (the typed tables of
:mod:`crtstats.runner._registry`) and the run objects it takes.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from crtstats.exceptions import OutputNotAvailableError
from crtstats.models import CRTResult
from crtstats.plots import cluster_size_frame, forest_panels
from crtstats.runner._plan import FigureName, TableName
from crtstats.runner._registry import FIGURE_FUNCTIONS, TABLE_BUILDERS, Fit
from crtstats.schema import ARMS, REVIEWS
from crtstats.tables import DEFAULT_INSTRUMENTS, QUESTIONNAIRE_TABLES, Column, Table
from crtstats.trial import TrialData

__all__ = ["FIGURE_TITLES", "TABLE_TITLES", "RunObjects", "build_figure", "build_table",
           "data_summary"]

TABLE_TITLES = {
    "data_summary": "Input data",
    "consort_flow": "Flow of teams and service users through the trial",
    "baseline": "Baseline characteristics by arm",
    "fidelity_by_arm": "Fidelity by arm and review",
    "effects": "Effects of the programme: primary and sensitivity analyses",
    "item_change": "Change in fidelity item scores by arm",
}

FIGURE_TITLES = {
    "trajectories": "Team fidelity totals by review and arm",
    "domain_profile": "Fidelity domain scores by arm and review",
    "forest": "Effects of the programme with 95% confidence intervals, each outcome on the "
              "scale of its primary analysis (other scales, and randomisation tests, which "
              "have no interval, are in the effects table only)",
    "caterpillar": "Predicted team effects with 95% intervals (the plan's first mixed model, "
                   "named above the plot)",
    "cluster_size": "Proportion of service users admitted by team size and arm (dashed: "
                    "cluster-average, solid: participant-average); an informative "
                    "cluster size shows as a slope that differs between the arms",
    "questionnaire_means": "Team mean questionnaire totals by arm and wave (points: teams, "
                           "lines joining a team's waves; diamonds: arm means over teams "
                           "with 95% confidence intervals)",
}


@dataclass(frozen=True)
class RunObjects:
    """What the tables and figures are built from.

    ``questionnaires`` holds the scored questionnaire tables
    (:func:`crtstats.scales.score_questionnaire` output), by table name
    (``user_questionnaires``, ``staff_questionnaires``), scored as the plan's
    questionnaire analyses say; ``instruments`` and ``scorings`` name, by table, the
    instrument key and scoring each was scored with (a table left out: ``csq8`` for
    service users, ``ghq12`` for staff, and the key's first scoring).
    """

    trial: TrialData | None
    tables: Mapping[str, pd.DataFrame]
    scores: pd.DataFrame | None
    effects: pd.DataFrame
    fits: Mapping[str, Fit]
    suppress_below: int
    questionnaires: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    instruments: Mapping[str, str] = field(default_factory=dict)
    scorings: Mapping[str, str] = field(default_factory=dict)

    def instrument_of(self, table: str) -> tuple[str, str | None]:
        """The instrument key and scoring of the questionnaire table ``table``."""
        return (self.instruments.get(table, DEFAULT_INSTRUMENTS[table]),
                self.scorings.get(table))


def data_summary(provenance: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per input table: file name, rows and the first 12 hex of its sha256."""
    return pd.DataFrame({
        "table": list(provenance),
        "file": [p["file"] for p in provenance.values()],
        "rows": [int(p["rows"]) for p in provenance.values()],
        "sha256": [str(p["sha256"])[:12] for p in provenance.values()],
    })


def _summary_table(files: Mapping[str, Any]) -> Table:
    frame = data_summary(files)
    columns = [Column("Table", ("table",), "text"), Column("File", ("file",), "text"),
               Column("Rows", ("rows",), "integer"),
               Column("sha256 (first 12)", ("sha256",), "text")]
    return Table(frame, columns, title=TABLE_TITLES["data_summary"])


_T = TypeVar("_T")


def _needs(value: _T | None, what: str, name: str) -> _T:
    if value is None:
        raise OutputNotAvailableError(
            f"[output] tables/figures: {name!r} needs {what}, which this trial or plan "
            "does not provide; remove it from [output].")
    return value


def _call(
    function: Callable[..., Table], args: tuple[Any, ...], kwargs: dict[str, Any],
    objects: RunObjects,
) -> Table:
    if "suppress_below" in inspect.signature(function).parameters:
        kwargs["suppress_below"] = objects.suppress_below or None  # 0: withhold nothing
    return function(*args, **kwargs)


def build_table(name: TableName, objects: RunObjects, files: Mapping[str, Any]) -> Table:
    """Build the table ``name`` of ``[output] tables`` from the run's objects.

    Raises
    ------
    OutputNotAvailableError
        If the trial lacks what it needs (e.g. fidelity data for ``fidelity_by_arm``).
    """
    if name == "data_summary":
        return _summary_table(files)
    function = TABLE_BUILDERS[name]
    kwargs: dict[str, Any] = {}
    if name in ("consort_flow", "baseline"):
        args: tuple[Any, ...] = (_needs(objects.trial, "validated trial data", name),)
        if name == "baseline" and objects.scores is not None:
            kwargs["scores"] = objects.scores
        kwargs |= _questionnaire_kwargs(name, objects)
    elif name == "fidelity_by_arm":
        args = (_needs(objects.scores, "fidelity scores", name), objects.tables["teams"])
    elif name == "effects":
        if objects.effects.empty:
            raise OutputNotAvailableError(
                "[output] table 'effects' needs at least one [[analysis]] entry with effects.")
        args = (objects.effects,)
    else:
        fidelity = _needs(objects.tables.get("fidelity"), "fidelity data", name)
        args = (fidelity, objects.tables["teams"])
        kwargs["to_review"], _ = change_review(objects)
    return _call(function, args, kwargs, objects)


def _questionnaire_kwargs(name: TableName, objects: RunObjects) -> dict[str, Any]:
    """The run's scored questionnaires and their instruments, for the flow and baseline."""
    kwargs: dict[str, Any] = {}
    if objects.questionnaires:
        kwargs["questionnaire_scores"] = dict(objects.questionnaires)
    if objects.instruments:
        kwargs["instruments"] = dict(objects.instruments)
    if name == "baseline" and objects.scorings:
        kwargs["scorings"] = dict(objects.scorings)
    return kwargs


def change_review(objects: RunObjects) -> tuple[str, str | None]:
    """The review the item-change table runs to, and a note when it is not the last.

    The table compares baseline with 12 months. A partial trial (an interim analysis,
    or an arm not yet reviewed at 12 months) gets the latest review that both arms
    have, with a note saying so; with no follow-up review in both arms the table is not
    available (:class:`OutputNotAvailableError`).
    """
    fidelity = _needs(objects.tables.get("fidelity"), "fidelity data", "item_change")
    teams = objects.tables["teams"]
    arm = fidelity["team_id"].astype(str).map(
        dict(zip(teams["team_id"].astype(str), teams["arm"].astype(str), strict=True)))
    both = [r for r in REVIEWS[1:]
            if set(arm[fidelity["review"].astype(str) == r]) >= set(ARMS)]
    if not both:
        raise OutputNotAvailableError(
            "[output] tables/figures: 'item_change' needs a follow-up review that teams of "
            f"both arms have; this trial has none after {REVIEWS[0]}.")
    last = both[-1]
    if last == REVIEWS[-1]:
        return last, None
    return last, (f"the item-change table runs from {REVIEWS[0]} to {last}, the latest "
                  f"review both arms have: not every arm has a {REVIEWS[-1]} review yet.")


def _forest(function: Callable[..., Axes], effects: pd.DataFrame, figure: Figure) -> None:
    """One forest panel per outcome and scale (:func:`crtstats.plots.forest_panels`).

    Each outcome is drawn on the scale of its primary row only (an outcome without a
    primary row keeps all its scales): the same effect on the risk-difference,
    risk-ratio and odds-ratio scales would triple its panels and take the figure past a
    journal page, and the effects table has every scale.
    """
    primary = effects[effects["role"] == "primary"].drop_duplicates("outcome")
    scale_of = dict(zip(primary["outcome"], primary["scale"], strict=True))
    keep = [scale_of.get(o, s) == s
            for o, s in zip(effects["outcome"], effects["scale"], strict=True)]
    forest_panels(effects.loc[keep], figure)


def _questionnaire_means(function: Callable[..., Axes], objects: RunObjects,
                         figure: Figure) -> None:
    """One panel per scored questionnaire table, side by side."""
    scored = [(t, f) for t, f in objects.questionnaires.items() if f is not None]
    if not scored:
        raise OutputNotAvailableError(
            "[output] tables/figures: 'questionnaire_means' needs scored questionnaire data "
            "(a user_questionnaires or staff_questionnaires table and a questionnaire "
            "analysis), which this trial or plan does not provide; remove it from [output].")
    axes = figure.subplots(1, len(scored), squeeze=False)[0]
    for k, (ax, (table, frame)) in enumerate(zip(axes, scored, strict=True)):
        instrument, scoring = objects.instrument_of(table)
        function(frame, objects.tables["teams"], instrument=instrument, scoring=scoring,
                 table=table, ax=ax)
        ax.set_title(QUESTIONNAIRE_TABLES[table], fontsize="medium")
        legend = ax.get_legend()
        if k > 0 and legend is not None:  # the arms are the same in every panel
            legend.remove()


def build_figure(name: FigureName, objects: RunObjects, figure: Figure) -> None:
    """Draw the figure ``name`` of ``[output] figures`` on the matplotlib ``figure``.

    Raises
    ------
    OutputNotAvailableError
        If the run lacks what it needs.
    """
    function = FIGURE_FUNCTIONS[name]
    if name == "forest":
        if objects.effects.empty:
            raise OutputNotAvailableError(
                "[output] figure 'forest' needs at least one [[analysis]] entry with effects."
            )
        with_interval = objects.effects.dropna(subset=["conf_low", "conf_high"])
        if with_interval.empty:
            raise OutputNotAvailableError(
                "[output] figure 'forest' needs at least one effect with a confidence "
                "interval (randomisation tests have none).")
        _forest(function, with_interval, figure)
        return
    if name == "questionnaire_means":
        _questionnaire_means(function, objects, figure)
        return
    ax = figure.subplots()
    if name == "cluster_size":
        admissions = _needs(objects.tables.get("admissions"), "the admissions table", name)
        function(cluster_size_frame(admissions, objects.tables["teams"]), ax=ax)
        return
    if name in ("trajectories", "domain_profile"):
        scores = _needs(objects.scores, "fidelity scores", name)
        function(scores, objects.tables["teams"], ax=ax)
        return
    mixed = [(n, f) for n, f in objects.fits.items()
             if isinstance(f, CRTResult) and f.random_effects is not None]
    fit_name, fit = _needs(mixed[0] if mixed else None, "a mixed model with random effects",
                           name)
    function(fit, ax=ax)
    ax.set_title(fit_name, fontsize="medium")

"""Tables that count teams and service users: trial flow and baseline characteristics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from crtstats.exceptions import InvalidParameterError
from crtstats.tables._common import (
    ARMS,
    REVIEWS,
    arm_by_team,
    by_key,
    check_suppress_below,
    is_small,
    item_columns,
    join_arm,
    present_reviews,
    require_columns,
    suppression_marker,
    suppression_note,
)
from crtstats.tables._questionnaire import (
    FLOW_HEADINGS,
    Questionnaire,
    present_questionnaires,
    wave_text,
    waves,
)
from crtstats.tables._summary import (
    OVERALL,
    arm_columns,
    arm_groups,
    count_row,
    mean_row,
    median_row,
    percent_row,
    suppress_rows,
)
from crtstats.tables._table import Column, Table

__all__ = ["baseline", "consort_flow"]

_PERIOD_TEXT = {"pre": "pre period", "follow_up": "follow-up period"}


def _table_of(trial: Any, name: str) -> pd.DataFrame | None:
    frame = getattr(trial, name, None)
    return frame if isinstance(frame, pd.DataFrame) else None


def _teams(trial: Any) -> pd.DataFrame:
    teams = _table_of(trial, "teams")
    if teams is None:
        raise InvalidParameterError(
            f"trial must have a teams DataFrame (a TrialData or the example trial); got "
            f"{type(trial).__name__} without one."
        )
    return teams


def _team_rows(trial: Any, teams: pd.DataFrame) -> list[dict[str, Any]]:
    arms = arm_by_team(teams)
    rows: list[dict[str, Any]] = [
        {"unit": "Teams", "stage": "randomised", **by_key(arms.value_counts())}
    ]
    fidelity = _table_of(trial, "fidelity")
    if fidelity is not None:
        require_columns(fidelity, "fidelity", ("team_id", "review"))
        present_reviews(fidelity["review"].tolist())
        frame = fidelity.assign(arm=join_arm(fidelity, teams, "fidelity"),
                                review=fidelity["review"].astype(str))
        for review in REVIEWS:
            part = frame[frame["review"] == review]
            rows.append({"unit": "Teams", "stage": f"reviewed at {review}",
                         **by_key(part.groupby("arm")["team_id"].nunique())})
        complete = frame["review"] == "12m"
        items = item_columns(fidelity)
        if items:
            complete &= frame[items].notna().all(axis=1)
        rows.append({"unit": "Teams", "stage": "analysed (12m review, all items scored)",
                     **by_key(frame[complete].groupby("arm")["team_id"].nunique())})
    return rows


def _user_rows(trial: Any, teams: pd.DataFrame) -> list[dict[str, Any]]:
    admissions = _table_of(trial, "admissions")
    service_use = _table_of(trial, "service_use")
    rows: list[dict[str, Any]] = []
    if admissions is not None:
        require_columns(admissions, "admissions", ("team_id", "person_id", "period", "admitted"))
        frame = admissions.assign(arm=join_arm(admissions, teams, "admissions"))
        for period, text in _PERIOD_TEXT.items():
            part = frame[frame["period"].astype(str) == period]
            rows.append({"unit": "Service users", "stage": f"in the {text}",
                         **by_key(part.groupby("arm")["person_id"].nunique())})
        part = frame[(frame["period"].astype(str) == "follow_up") & frame["admitted"].notna()]
        rows.append({"unit": "Service users", "stage": "analysed (follow-up, admission known)",
                     **by_key(part.groupby("arm")["person_id"].nunique())})
    elif service_use is not None:
        require_columns(service_use, "service_use", ("team_id", "period", "n_users"))
        frame = service_use.assign(arm=join_arm(service_use, teams, "service_use"))
        for period, text in _PERIOD_TEXT.items():
            part = frame[frame["period"].astype(str) == period]
            sums = part.groupby("arm")["n_users"].sum()
            rows.append({"unit": "Service users", "stage": f"in the {text} (team totals)",
                         **by_key(sums)})
    return rows


def _questionnaire_rows(questionnaires: list[Questionnaire], teams: pd.DataFrame
                        ) -> list[dict[str, Any]]:
    """Sampled, responded and analysed (a total scored) respondents per wave and arm."""
    rows: list[dict[str, Any]] = []
    for q in questionnaires:
        scores = q.scores
        require_columns(scores, f"{q.table} scores", ("team_id", "wave", "responded", "total"))
        frame = scores.assign(arm=join_arm(scores, teams, q.table),
                              wave=scores["wave"].astype(str))
        unit = f"{FLOW_HEADINGS[q.table]} ({q.name})"
        for wave in waves(q.table):
            part = frame[frame["wave"] == wave]
            if part.empty:
                continue
            text = wave_text(wave)
            stages = (
                (f"sampled at {text}", part),
                (f"responded at {text}", part[part["responded"].astype(bool)]),
                (f"analysed at {text} (total scored)", part[part["total"].notna()]),
            )
            rows += [{"unit": unit, "stage": stage, "people": True,
                      **by_key(chosen.groupby("arm").size())} for stage, chosen in stages]
    return rows


def consort_flow(
    trial: Any, *, suppress_below: int | None = None,
    instruments: Mapping[str, str] | None = None,
    questionnaire_scores: Mapping[str, pd.DataFrame] | None = None,
) -> Table:
    """CONSORT-style flow of teams, service users and respondents through the trial, by arm.

    Parameters
    ----------
    trial
        A ``TrialData`` or any object with ``teams`` and some of ``fidelity``,
        ``admissions``, ``service_use``, ``user_questionnaires`` and
        ``staff_questionnaires`` DataFrames (e.g.
        :func:`crtstats.datasets.load_example`); a table the object lacks, or holds as
        ``None``, is absent.
    suppress_below
        Withhold counts of people (service users, respondents) from 1 to
        ``suppress_below - 1`` (and the total that would reveal them). ``None``
        (default), 0 or 1 withhold nothing; NHS practice is often ``suppress_below=8``
        (counts 1 to 7). Teams are not people and are never withheld.
    instruments
        The instrument key each questionnaire table is scored with, by table name;
        tables left out take ``{"user_questionnaires": "csq8",
        "staff_questionnaires": "ghq12"}``.
    questionnaire_scores
        Questionnaire tables already scored (:func:`crtstats.scales.score_questionnaire`
        output), by table name, used instead of scoring the trial's table with the
        key's default missing-item rule (a run passes its own, scored as the plan says).

    Returns
    -------
    Table
        Rows ``unit, stage`` with counts ``control, intervention, total``: teams
        randomised, reviewed at each review, analysed (12-month review with every item
        scored); service users in each period and analysed (follow-up period with
        the admission outcome recorded). Without ``admissions`` the service-user rows
        are the sums of ``service_use.n_users``. For each questionnaire table, at each
        wave: respondents sampled (rows), responded (``responded`` true; every row
        when the table has no ``responded`` column) and analysed (a total scored under
        the instrument's missing-item rule).

    Raises
    ------
    SchemaValidationError
        If a table lacks a column the count needs.
    InvalidParameterError
        If ``trial`` has no ``teams`` table, an arm is not ``control``/``intervention``,
        a team is unknown, ``suppress_below`` is not ``None`` or a whole number >= 0,
        or ``instruments`` names a table that is not a questionnaire table.

    Notes
    -----
    Counts are distinct ``team_id`` (teams), distinct ``person_id`` (service
    users) and rows (respondents: one per person and wave) per arm; ``total`` is
    their sum. Respondents sampled at the two waves are counted at each; a person
    sampled at both (a linked design) is counted twice, once per wave.

    References
    ----------
    Campbell MK, Piaggio G, Elbourne DR, Altman DG. Consort 2010 statement: extension
    to cluster randomised trials. BMJ 2012;345:e5661.

    Examples
    --------
    >>> from crtstats.datasets import load_example
    >>> flow = consort_flow(load_example())
    >>> flow.formatted().iloc[0].tolist()
    ['randomised', '10', '15', '25']

    There is no single R equivalent; ``consort::consort_plot()`` draws the diagram.
    """
    threshold = check_suppress_below(suppress_below)
    teams = _teams(trial)
    questionnaires = present_questionnaires(trial, instruments, None, questionnaire_scores)
    rows = ([row | {"people": False} for row in _team_rows(trial, teams)]
            + [row | {"people": True} for row in _user_rows(trial, teams)]
            + _questionnaire_rows(questionnaires, teams))
    frame = pd.DataFrame(rows, columns=["unit", "stage", "people", *ARMS]).fillna(
        {a: 0 for a in ARMS})
    frame[list(ARMS)] = frame[list(ARMS)].astype(float)
    frame["total"] = frame[list(ARMS)].sum(axis=1)
    cells: set[tuple[int, str]] = set()
    if threshold is not None:
        for i in frame.index[frame["people"].astype(bool)]:
            small = [a for a in ARMS if is_small(frame.loc[i, a], threshold)]
            hide = small + (["total"] if small else [])  # the total would reveal them
            for column in hide:
                cells.add((int(i), column))
                frame.loc[i, column] = np.nan
    columns = [Column("Stage", ("stage",), "text")] + [
        Column(label, (source,), "integer") for label, source in
        (("Control", "control"), ("Intervention", "intervention"), ("Total", "total"))
    ]
    staff = any(q.table == "staff_questionnaires" for q in questionnaires)
    notes = [suppression_note(threshold, staff=staff)] if threshold and cells else []
    title = "Flow of teams and service users through the trial"
    if questionnaires:
        title = "Flow of teams, service users and questionnaire respondents through the trial"
    # one label whatever the title, so a manuscript's \ref survives new sections
    return Table(frame.drop(columns=["people"]), columns, title=title, row_group="unit",
                 row_group_label="Unit", footnotes=notes, suppressed=cells,
                 label="tab:consort-flow",
                 suppression_marker=suppression_marker(threshold or 0))


# -- baseline characteristics -------------------------------------------------------------
def _by_arm(values: pd.Series, arm: pd.Series) -> dict[str, pd.Series]:
    return {a: values[arm == a] for a in ARMS}


def _team_level(teams: pd.DataFrame, users: pd.DataFrame | None,
                scores: pd.DataFrame | None) -> list[dict[str, Any]]:
    arm = arm_by_team(teams)
    team = {"level": "Team level", "people": False}
    rows = [count_row("Teams", by_key(arm.value_counts()), family="teams", **team)]
    if "stratum" in teams.columns:
        strata = teams["stratum"].astype(str)
        totals = by_key(arm.value_counts())
        for stratum in sorted(strata.unique()):
            hits = by_key(arm[strata.to_numpy() == stratum].value_counts())
            rows.append(percent_row(f"Stratum: {stratum}", hits, totals, family="stratum",
                                    **team))
    if users is not None:
        per_team = users.groupby("team_id")["person_id"].nunique()
        sizes = per_team.reindex(arm.index, fill_value=0).astype(float)
        rows.append(mean_row("Service users per team (pre period)",
                             _by_arm(sizes, arm), family="size", **team))
    if scores is not None:
        require_columns(scores, "scores", ("team_id", "review", "total", "mean_item"))
        base = scores[scores["review"].astype(str) == "baseline"]
        s_arm = join_arm(base, teams, "scores")
        rows.append(mean_row("Fidelity total at baseline", _by_arm(base["total"], s_arm),
                             family="total", **team))
        rows.append(mean_row("Mean item score at baseline",
                             _by_arm(base["mean_item"], s_arm), family="mean_item", **team))
    return rows


def _baseline_scores(q: Questionnaire, teams: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    scores = q.scores
    require_columns(scores, f"{q.table} scores", ("team_id", "wave", "responded", "total"))
    base = scores[scores["wave"].astype(str) == waves(q.table)[0]]
    return base, join_arm(base, teams, q.table)


def _questionnaire_team_rows(questionnaires: list[Questionnaire], teams: pd.DataFrame
                             ) -> list[dict[str, Any]]:
    """Per questionnaire: teams with baseline respondents, and the mean (SD) over teams
    of the team mean baseline total."""
    team = {"level": "Team level", "people": False}
    rows = []
    for q in questionnaires:
        base, arm = _baseline_scores(q, teams)
        answered = base[base["responded"].astype(bool)].assign(arm=arm)
        rows.append(count_row(f"Teams with {q.name} respondents at baseline",
                              by_key(answered.groupby("arm")["team_id"].nunique()),
                              family=f"{q.table}_teams", **team))
        scored = base.assign(arm=arm, team_id=base["team_id"].astype(str)).dropna(
            subset=["total"])
        means = scored.groupby(["arm", "team_id"])["total"].mean().astype(float)
        per_arm = {a: means.xs(a, level="arm") if a in means.index.get_level_values("arm")
                   else pd.Series(dtype=float) for a in ARMS}
        rows.append(mean_row(f"{q.title} total at baseline, team means", per_arm,
                             family=f"{q.table}_team_means", **team))
    return rows


def _questionnaire_person_rows(questionnaires: list[Questionnaire], teams: pd.DataFrame
                               ) -> list[dict[str, Any]]:
    """Per questionnaire: respondents at baseline, and their totals' mean (SD) and
    median (IQR)."""
    rows = []
    for q in questionnaires:
        base, arm = _baseline_scores(q, teams)
        person = {"level": f"{q.who} answering the {q.name} at baseline", "people": True}
        responded = base["responded"].astype(bool)
        rows.append(count_row("Respondents", by_key(arm[responded].value_counts()),
                              family=f"{q.table}_respondents", **person))
        totals = _by_arm(base["total"].astype(float), arm)
        rows.append(mean_row(f"{q.title} total", totals, family=f"{q.table}_mean", **person))
        rows.append(median_row(f"{q.title} total, median (IQR)", totals,
                               family=f"{q.table}_median", **person))
    return rows


def _binary_row(label: str, values: pd.Series, arm: pd.Series, **extra: Any) -> dict[str, Any]:
    known = values.notna()
    hits = {a: float((values[known & (arm == a)] == 1).sum()) for a in ARMS}
    totals = {a: float((known & (arm == a)).sum()) for a in ARMS}
    return percent_row(label, hits, totals, **extra)


def _person_level(users: pd.DataFrame, teams: pd.DataFrame) -> list[dict[str, Any]]:
    arm = join_arm(users, teams, "admissions")
    person = {"level": "Service users (pre period)", "people": True}
    counts = by_key(users.assign(arm=arm).groupby("arm")["person_id"].nunique())
    rows = [count_row("Service users", counts, family="users", **person)]
    if "age" in users.columns:
        rows.append(mean_row("Age, years", _by_arm(users["age"], arm), family="age", **person))
    if "sex" in users.columns:
        sex = users["sex"].astype("string")
        totals = {a: float((sex.notna() & (arm == a)).sum()) for a in ARMS}
        for category in sorted(sex.dropna().unique()):
            hits = {a: float(((sex == category) & (arm == a)).sum()) for a in ARMS}
            rows.append(percent_row(f"Sex: {category}", hits, totals, family="sex", **person))
    rows.append(_binary_row("Admitted", users["admitted"], arm, family="admitted", **person))
    if "bed_days" in users.columns:
        rows.append(mean_row("Bed days", _by_arm(users["bed_days"], arm), family="bed_days",
                             **person))
    if "readmitted" in users.columns:
        rows.append(_binary_row("Readmitted", users["readmitted"], arm, family="readmitted",
                                **person))
    return rows


def baseline(
    trial: Any,
    *,
    scores: pd.DataFrame | None = None,
    suppress_below: int | None = None,
    decimals: int = 1,
    instruments: Mapping[str, str] | None = None,
    scorings: Mapping[str, str] | None = None,
    questionnaire_scores: Mapping[str, pd.DataFrame] | None = None,
) -> Table:
    """Baseline characteristics by arm and overall, at team and at person level, with N.

    Parameters
    ----------
    trial
        A ``TrialData`` or any object with a ``teams`` DataFrame and, for the
        service-user rows, an ``admissions`` DataFrame (its ``pre`` period is the
        baseline window); ``user_questionnaires`` and ``staff_questionnaires`` add
        their baseline wave (a table the object lacks, or holds as ``None``, is
        absent).
    scores
        Optional fidelity scores (:func:`crtstats.scales.score_fidelity` output); adds
        baseline fidelity total and mean item score rows.
    suppress_below
        Withhold counts of people (service users, respondents) from 1 to
        ``suppress_below - 1``, means and medians over so few people, the category
        that would reveal a withheld one by subtraction, and the overall figure of a
        row with a withheld arm. ``None`` (default), 0 or 1 withhold nothing. Team
        rows are never withheld.
    decimals
        Decimal places of means, SDs, medians, quartiles and percentages.
    instruments, scorings
        The instrument key and scoring each questionnaire table is scored with, by
        table name; tables left out take ``csq8`` (service users) and ``ghq12``
        (staff) and the key's first scoring.
    questionnaire_scores
        Questionnaire tables already scored (:func:`crtstats.scales.score_questionnaire`
        output), by table name, used instead of scoring the trial's table.

    Returns
    -------
    Table
        One row per characteristic: ``level``, ``label``, ``statistic`` (``n``,
        ``n_percent``, ``mean_sd`` or ``median_iqr``) and per arm and ``overall``
        ``<group>_n`` (teams or people with a value), ``<group>_value`` (count, mean
        or median), ``<group>_spread`` (proportion, SD or lower quartile) and
        ``<group>_upper`` (upper quartile). Displayed as N and "mean (SD)",
        "median (lower to upper quartile)" or "n (%)" per arm and overall. Each
        questionnaire adds, at team level, the teams with baseline respondents and
        the mean (SD) over teams of the team mean baseline total, and a section of
        its baseline respondents: their number and the mean (SD) and median (IQR)
        of their totals.

    Raises
    ------
    SchemaValidationError
        If a table lacks a column the summary needs.
    InvalidParameterError
        If ``trial`` has no ``teams`` table, an arm or team is unknown, or
        ``suppress_below`` is invalid.

    Notes
    -----
    Means and SDs (``n - 1`` denominator) are over the service users (or teams) with a
    value; percentages are of those with a value, so missing values show as an N below
    the arm's total rather than being hidden. Service users per team is the cluster
    size in the pre period (teams without service users count as 0). Quartiles are
    R's ``quantile(type = 7)``. A team mean is the mean total of the team's scored
    baseline respondents, :math:`\\bar y_j = n_j^{-1} \\sum_i y_{ij}`; the team-level
    row is the mean and SD of :math:`\\bar y_j` over the teams with one, each team
    weighted equally. Overall pools the arms.

    References
    ----------
    Campbell MK, et al. Consort 2010 statement: extension to cluster randomised
    trials. BMJ 2012;345:e5661 (item 15: baseline characteristics at both levels).

    Examples
    --------
    >>> from crtstats.datasets import load_example
    >>> table = baseline(load_example())
    >>> row = table.data["label"].tolist().index("Readmitted")
    >>> table.formatted().iloc[row].tolist()
    ['Readmitted', '552', '62 (11.2%)', '849', '137 (16.1%)', '1401', '199 (14.2%)']

    In R: ``gtsummary::tbl_summary(by = arm)`` on the team and the person tables.
    """
    threshold = check_suppress_below(suppress_below)
    teams = _teams(trial)
    questionnaires = present_questionnaires(trial, instruments, scorings,
                                            questionnaire_scores)
    admissions = _table_of(trial, "admissions")
    users = None
    if admissions is not None:
        require_columns(admissions, "admissions", ("team_id", "person_id", "period", "admitted"))
        users = admissions[admissions["period"].astype(str) == "pre"]
    rows = _team_level(teams, users, scores) + _questionnaire_team_rows(questionnaires, teams)
    if users is not None:
        rows += _person_level(users, teams)
    rows += _questionnaire_person_rows(questionnaires, teams)
    frame = pd.DataFrame(rows)
    frame, cells = suppress_rows(frame, threshold, people=frame["people"],
                                 family=frame["family"])
    counts = arm_by_team(teams).value_counts()
    headers = {a: f"{a.capitalize()} ({int(counts.get(a, 0))} teams)" for a in ARMS}
    headers[OVERALL] = f"Overall ({int(counts.sum())} teams)"
    columns = [Column("Characteristic", ("label",), "text"),
               *arm_columns(n_label="N", value_label="Mean (SD) or n (%)", decimals=decimals,
                            overall=True)]
    who = "teams, service users or respondents" if questionnaires else "teams or service users"
    notes = [f"N: {who} with a value; percentages are of N."]
    if questionnaires:
        notes.append("Rows marked median (IQR) show the median (lower quartile to upper "
                     "quartile).")
    staff = any(q.table == "staff_questionnaires" for q in questionnaires)
    notes += [suppression_note(threshold, staff=staff)] if threshold and cells else []
    return Table(frame.drop(columns=["people"]), columns, title="Baseline characteristics",
                 column_groups=arm_groups(headers), row_group="level",
                 row_group_label="Level", footnotes=notes, suppressed=cells,
                 suppression_marker=suppression_marker(threshold or 0))

"""The questionnaire_means figure, and the runner's questionnaire figure."""

from __future__ import annotations

import statistics
from collections.abc import Iterator

import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from scipy import stats

from crtstats.exceptions import InvalidParameterError, OutputNotAvailableError
from crtstats.plots import questionnaire_means, render_figure, team_means
from crtstats.runner._plan import DEFAULT_FIGURES
from crtstats.runner._products import RunObjects, build_figure
from crtstats.scales import score_questionnaire
from tests.test_tables_questionnaire import STAFF, TEAMS, USERS

RTOL = 1e-12  # means of a few small integers: only summation order differs


@pytest.fixture(autouse=True)
def _headless() -> Iterator[None]:
    backend = mpl.get_backend()
    mpl.use("Agg")
    yield
    mpl.use(backend)


SCORES = score_questionnaire(USERS, "csq8")


def _arm_markers(ax: object) -> list[tuple[float, float]]:
    """(x, y) of the arm-mean diamonds drawn by errorbar."""
    return [(float(line.get_xdata()[0]), float(line.get_ydata()[0]))
            for line in ax.get_lines() if line.get_marker() == "D"]  # type: ignore[attr-defined]


def test_team_means_are_the_mean_scored_total_per_team_and_wave() -> None:
    means = team_means(SCORES, TEAMS)
    for (team, wave), part in SCORES.dropna(subset=["total"]).groupby(["team_id", "wave"]):
        row = means[(means["team_id"] == team) & (means["wave"] == wave)].iloc[0]
        assert row["mean"] == pytest.approx(statistics.fmean(part["total"]), rel=RTOL)
        assert row["n"] == len(part)
    assert list(dict.fromkeys(means["wave"])) == ["baseline", "follow_up"]


def test_figure_draws_teams_arm_means_with_t_intervals_and_the_total_range() -> None:
    ax = questionnaire_means(SCORES, TEAMS, instrument="csq8")
    points = sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))
    means = team_means(SCORES, TEAMS)
    assert points == len(means)  # one point per team and wave
    joined = [ln for ln in ax.get_lines() if ln.get_marker() in ("None", "", None)
              and len(ln.get_xdata()) == 2]
    assert len(joined) >= means.groupby("team_id").size().eq(2).sum()
    markers = sorted(_arm_markers(ax))
    assert len(markers) == 4  # two arms at two waves
    arms = dict(zip(TEAMS["team_id"], TEAMS["arm"], strict=True))
    for wave_index, wave in enumerate(("baseline", "follow_up")):
        for arm_index, arm in enumerate(("control", "intervention")):
            values = means[(means["wave"] == wave) & (means["team_id"].map(arms) == arm)]
            x, y = markers[2 * wave_index + arm_index]
            assert y == pytest.approx(statistics.fmean(values["mean"]), rel=RTOL)
            assert (x < wave_index) == (arm_index == 0)
    low, high = ax.get_ylim()
    assert low < 8 < 32 < high and high - low < 26  # the CSQ-8 total range, 8 to 32
    assert [t.get_text() for t in ax.get_xticklabels()] == ["baseline", "follow-up"]
    assert ax.get_ylabel() == "CSQ-8 total, team mean"
    # the interval: t on k - 1 df over the team means
    caps = [c for c in ax.collections if not isinstance(c, PathCollection)]
    segments = np.concatenate([c.get_segments() for c in caps])  # type: ignore[attr-defined]
    base = means[(means["wave"] == "baseline") & (means["team_id"].map(arms) == "control")]
    k = len(base)
    half = stats.t.ppf(0.975, k - 1) * statistics.stdev(base["mean"]) / np.sqrt(k)
    spans = [abs(s[1, 1] - s[0, 1]) for s in segments]
    assert min(abs(span - 2 * half) for span in spans) < 1e-9


def test_figure_on_the_ghq12_likert_scoring_and_a_given_axes() -> None:
    scores = score_questionnaire(STAFF, "ghq12", scoring="likert")
    figure = Figure()
    ax = figure.add_subplot()
    assert questionnaire_means(scores, TEAMS, instrument="ghq12", scoring="likert",
                               table="staff_questionnaires", ax=ax) is ax
    low, high = ax.get_ylim()
    assert low < 0 < 36 < high
    assert ax.get_ylabel() == "GHQ-12 (Likert scoring) total, team mean"
    with pytest.raises(InvalidParameterError, match="scorings"):
        questionnaire_means(scores, TEAMS, instrument="ghq12", scoring="sum")


def test_figure_with_one_wave_and_bad_input() -> None:
    ax = questionnaire_means(SCORES[SCORES["wave"] == "follow_up"], TEAMS)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["follow-up"]
    with pytest.raises(InvalidParameterError, match="wave must be one of"):
        questionnaire_means(SCORES.assign(wave="6m"), TEAMS)
    with pytest.raises(InvalidParameterError, match="not in teams"):
        questionnaire_means(SCORES, TEAMS.iloc[:3])


def test_figure_bytes_are_reproducible() -> None:
    first = render_figure(questionnaire_means(SCORES, TEAMS), "png", dpi=60)
    assert render_figure(questionnaire_means(SCORES, TEAMS), "png", dpi=60) == first


def objects(**questionnaires: pd.DataFrame) -> RunObjects:
    return RunObjects(trial=None, tables={"teams": TEAMS}, scores=None,
                      effects=pd.DataFrame(), fits={}, suppress_below=0,
                      questionnaires=questionnaires,
                      instruments={"staff_questionnaires": "ghq12"})


def test_runner_draws_a_panel_per_questionnaire_table() -> None:
    staff = score_questionnaire(STAFF, "ghq12")
    figure = Figure()
    build_figure("questionnaire_means", objects(user_questionnaires=SCORES,
                                                staff_questionnaires=staff), figure)
    assert [ax.get_title() for ax in figure.axes] == ["Service users", "Staff"]
    assert [ax.get_legend() is not None for ax in figure.axes] == [True, False]
    figure = Figure()
    build_figure("questionnaire_means", objects(staff_questionnaires=staff), figure)
    assert len(figure.axes) == 1


def test_runner_figure_is_a_default_left_out_without_questionnaires() -> None:
    assert "questionnaire_means" in DEFAULT_FIGURES
    with pytest.raises(OutputNotAvailableError, match="questionnaire_means"):
        build_figure("questionnaire_means", objects(), Figure())

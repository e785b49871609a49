"""The analysis frames of a scored questionnaire table: checks, counts and exclusions.

From the scored frame of :func:`crtstats.scales.score_questionnaire` (one row per
sampled person and wave) and the teams table this builds:

* the follow-up frame: one row per scored follow-up respondent with ``arm``,
  ``stratum``, the outcome (named as the effects rows name it) and the team's baseline
  mean (or proportion) of the same score over its scored baseline respondents;
* the team frame: one row per analysed team with its follow-up mean, baseline mean and
  number of respondents;
* the linked frame: the follow-up rows of people scored at both waves (the same id in
  the same team) with their own baseline score.

Teams without a scored follow-up respondent, or without a scored baseline respondent,
are left out of every analysis (the cluster-level covariate cannot be imputed silently)
and counted in the notes; an arm left with fewer than two teams raises.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crtstats._options import require_columns
from crtstats.exceptions import ModelSpecificationError, NotEstimableError
from crtstats.schema import ARMS

__all__ = ["WAVES", "QuestionnaireFrames", "check_arm_events", "constant_outcome",
           "questionnaire_frames"]

#: The waves of a questionnaire table: fresh samples (or the same people) before and
#: after the programme.
WAVES = ("baseline", "follow_up")
#: Column names the analysis itself uses, which an outcome name may not take.
_RESERVED = frozenset({"team_id", "arm", "stratum", "wave", "responded", "total", "case",
                       "own_baseline", "n_respondents"})


@dataclass(frozen=True)
class QuestionnaireFrames:
    """The frames of one questionnaire outcome, and what was left out on the way."""

    follow_up: pd.DataFrame
    teams: pd.DataFrame
    linked: pd.DataFrame
    covariate: str
    notes: tuple[str, ...]


def _check_inputs(scores: pd.DataFrame, teams: pd.DataFrame, id_column: str, value: str,
                  outcome: str) -> None:
    if not isinstance(outcome, str) or not outcome.isidentifier() or outcome in _RESERVED:
        raise ModelSpecificationError(
            f"outcome must be a name usable in a formula (letters, digits, underscores) "
            f"and not one of {sorted(_RESERVED)}; got {outcome!r}. Use e.g. 'csq8'."
        )
    used = "the questionnaire analysis (pass the output of crtstats.scales." \
        "score_questionnaire as scores and the teams table as teams)"
    require_columns(scores, ("team_id", id_column, "wave", "responded", value), used_by=used)
    require_columns(teams, ("team_id", "arm", "stratum"), used_by=used)
    waves = set(scores["wave"].dropna().astype(str))
    if waves - set(WAVES) or scores["wave"].isna().any():
        shown = sorted(waves - set(WAVES)) + (["<missing>"] if scores["wave"].isna().any()
                                              else [])
        raise ModelSpecificationError(
            f"scores['wave'] must be one of {list(WAVES)}; found {shown}. Rename the "
            "values (or map the column) before the analysis."
        )
    arms = set(teams["arm"].astype(str))
    if arms - set(ARMS) or teams["stratum"].isna().any():
        raise ModelSpecificationError(
            f"teams['arm'] must be one of {list(ARMS)} and teams['stratum'] complete; "
            f"found arms {sorted(arms)}."
        )
    if teams["team_id"].duplicated().any():
        raise ModelSpecificationError("teams lists a team_id more than once.")
    unknown = sorted(set(scores["team_id"].astype(str)) - set(teams["team_id"].astype(str)))
    if unknown:
        raise ModelSpecificationError(
            f"scores has team_id {unknown[:10]} that the teams table does not list."
        )
    key = scores[["team_id", id_column, "wave"]].astype(str)
    if key.duplicated().any():
        raise ModelSpecificationError(
            f"scores has {int(key.duplicated().sum())} repeated (team_id, {id_column}, wave) "
            "row(s); one row per person and wave is expected (ids are not shown)."
        )


def _scored(scores: pd.DataFrame, id_column: str, value: str) -> pd.DataFrame:
    """The rows with a score: responded and not missing."""
    responded = scores["responded"].fillna(False).astype(bool)
    values = pd.to_numeric(scores[value], errors="coerce").astype(float)
    frame = pd.DataFrame({"team_id": scores["team_id"].astype(str),
                          "person": scores[id_column].astype(str),
                          "wave": scores["wave"].astype(str), "value": values})
    return frame.loc[responded.to_numpy() & values.notna().to_numpy()]


def _count_note(scores: pd.DataFrame, scored: pd.DataFrame, outcome: str,
                arm_of: pd.Series) -> str:
    responded = scores["responded"].fillna(False).astype(bool)
    parts = []
    for wave in WAVES:
        at = (scores["wave"].astype(str) == wave).to_numpy()
        arm = scores.loc[at, "team_id"].astype(str).map(arm_of)
        for name in ARMS:
            in_arm = (arm == name).to_numpy()
            n_scored = int(((scored["wave"] == wave)
                            & (scored["team_id"].map(arm_of) == name)).sum())
            parts.append(f"{wave} {name}: {int(in_arm.sum())} sampled, "
                         f"{int(responded[at].to_numpy()[in_arm].sum())} responded, "
                         f"{n_scored} scored")
    return f"{outcome}: " + "; ".join(parts) + "."


def _team_summaries(scored: pd.DataFrame, covariate: str) -> pd.DataFrame:
    fu = scored[scored["wave"] == "follow_up"].groupby("team_id")["value"]
    base = scored[scored["wave"] == "baseline"].groupby("team_id")["value"].mean()
    return pd.DataFrame({"follow_up_mean": fu.mean(), "n_respondents": fu.size()}).join(
        base.rename(covariate), how="left")


def _check_arms(per_team: pd.DataFrame, outcome: str, what: str) -> None:
    per_arm = per_team["arm"].value_counts().reindex(list(ARMS), fill_value=0)
    if (per_arm < 2).any():
        raise ModelSpecificationError(
            f"{outcome}: the questionnaire analysis needs at least two teams per arm "
            f"{what}; found {per_arm.to_dict()}. No model can separate the arm effect "
            "from the team effects with fewer."
        )


def _excluded(teams: pd.DataFrame, summary: pd.DataFrame, covariate: str, outcome: str,
              notes: list[str]) -> pd.Index:
    """Teams kept: a scored follow-up and a scored baseline respondent; notes the rest."""
    all_teams = pd.Index(teams["team_id"].astype(str))
    no_fu = sorted(set(all_teams) - set(summary.index))
    if no_fu:
        notes.append(f"{outcome}: {len(no_fu)} team(s) with no scored follow-up respondent "
                     f"(none sampled, none responded or none scored) are left out: {no_fu}.")
    no_base = sorted(summary.index[summary[covariate].isna()])
    if no_base:
        notes.append(
            f"{outcome}: {len(no_base)} team(s) with no scored baseline respondent have no "
            f"team baseline value to adjust for and are left out of every analysis: "
            f"{no_base}.")
    kept: list[str] = sorted(set(summary.index) - set(no_base))
    return pd.Index(kept)


def _linked(scored: pd.DataFrame, follow_up: pd.DataFrame) -> pd.DataFrame:
    base = scored[scored["wave"] == "baseline"].set_index(["team_id", "person"])["value"]
    key = pd.MultiIndex.from_frame(follow_up[["team_id", "person"]])
    own = pd.Series(base.reindex(key).to_numpy(), index=follow_up.index)
    return follow_up.assign(own_baseline=own).loc[own.notna()].reset_index(drop=True)


def _analysed_note(fu: pd.DataFrame, outcome: str) -> str:
    counts = fu.groupby("arm", observed=False)["team_id"].agg(["size", "nunique"])
    parts = [f"{arm} {int(n)} in {int(g)} teams" for arm, (n, g) in counts.iterrows()]
    return f"{outcome}: analysed at follow-up: " + ", ".join(parts) + "."


def questionnaire_frames(scores: pd.DataFrame, teams: pd.DataFrame, *, id_column: str,
                         outcome: str, case: bool) -> QuestionnaireFrames:
    """Check the inputs and build the follow-up, team and linked frames of ``outcome``.

    Raises
    ------
    ModelSpecificationError
        For a missing column, an unknown wave, arm or team, a repeated key, or an arm
        with fewer than two analysable teams.
    NotEstimableError
        If no follow-up or no baseline respondent was scored at all.
    """
    value = "case" if case else "total"
    _check_inputs(scores, teams, id_column, value, outcome)
    covariate = "team_baseline_prop" if case else "team_baseline_mean"
    info = teams[["team_id", "arm", "stratum"]].astype(str).set_index("team_id")
    scored = _scored(scores, id_column, value)
    notes = [_count_note(scores, scored, outcome, info["arm"])]
    for wave in WAVES:
        if not (scored["wave"] == wave).any():
            raise NotEstimableError(
                f"{outcome}: no {wave} respondent has a score, so the pre-specified "
                f"analysis (the follow-up score adjusted for the team's baseline mean) is "
                f"not possible. Check the wave column (values {list(WAVES)}) and the "
                "responded column; an unadjusted model can be fitted with crtstats.lmm.")
    summary = _team_summaries(scored, covariate)
    kept = _excluded(teams, summary, covariate, outcome, notes)
    team = summary.loc[kept].join(info).rename_axis("team_id").reset_index()
    _check_arms(team, outcome, "with a scored respondent at both waves")
    team["arm"] = pd.Categorical(team["arm"], categories=list(ARMS))
    fu = scored[(scored["wave"] == "follow_up") & scored["team_id"].isin(kept)]
    fu = fu.merge(team[["team_id", "arm", "stratum", covariate]], on="team_id", how="left")
    fu = fu.rename(columns={"value": outcome}).reset_index(drop=True)
    linked = _linked(scored, fu)
    notes.append(_analysed_note(fu, outcome))
    return QuestionnaireFrames(
        follow_up=fu.drop(columns=["person", "wave"]),
        teams=team, linked=linked.drop(columns=["person", "wave"]), covariate=covariate,
        notes=tuple(notes))


def constant_outcome(values: pd.Series, outcome: str) -> None:
    """Raise if the follow-up outcome takes a single value: no comparison is possible."""
    distinct = np.unique(values.to_numpy(dtype=float))
    if len(distinct) < 2:
        raise NotEstimableError(
            f"{outcome}: every scored follow-up respondent has the same value "
            f"({distinct[0]!r}); the arms cannot be compared and no ICC is defined. "
            "Check the scoring (instrument, scoring, caseness threshold).")


def check_arm_events(frame: pd.DataFrame, outcome: str) -> None:
    """Raise if an arm has no case, or only cases, at follow-up (separation).

    The odds ratio and risk ratio are then not identified (0 or infinite): the GLMM and
    GEE would report where their optimisers stopped, so nothing is fitted.
    """
    events = frame.groupby("arm", observed=False)[outcome].agg(["sum", "size"])
    for arm, (cases, size) in events.iterrows():
        if size and (cases == 0 or cases == size):
            counts = {str(a): f"{int(c)} of {int(n)}" for a, (c, n) in events.iterrows()}
            raise NotEstimableError(
                f"{outcome}: the {arm} arm has {'no' if cases == 0 else 'only'} cases at "
                f"follow-up (cases per arm: {counts}); the odds ratio and risk ratio are "
                "not identified (separation). Report the counts per arm; a risk "
                "difference is available from crtstats.cluster_level(..., "
                "outcome_type='binary', scale='difference').")

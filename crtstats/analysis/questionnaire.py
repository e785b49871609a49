"""The pre-specified analyses of a questionnaire outcome of a CORE-style trial.

A questionnaire (the CSQ-8 of service users, the GHQ-12 of staff) is given to a sample
of people in each team at baseline and at follow-up: by default fresh samples, a
repeated cross-section. For a continuous score (a total):

* primary: an individual-level LMM of the follow-up score, ``score ~ arm + stratum +
  team_baseline_mean`` with a random team intercept, REML, Kenward-Roger df;
* secondary (``linked=True``): the same model on the people scored at both waves, with
  their own baseline score added;
* sensitivity: the ANCOVA of team follow-up means on arm, stratum and the team baseline
  mean (CR2, Bell-McCaffrey df) and the stratified randomisation test.

For a caseness outcome (0/1), the set of :func:`crtstats.analyse_admissions`: the GLMM
(between-within df), GEE, cluster-level, the participant- and cluster-average
estimands (see :mod:`crtstats.analysis._binary`), adjusted for the team baseline
proportion of cases.
"""

from __future__ import annotations

from os import PathLike
from typing import Any, Literal, Protocol, get_args

import pandas as pd

from crtstats._options import check_option
from crtstats.analysis._binary import ARM_TERM, ESTIMAND, Collector, binary_analyses
from crtstats.analysis._common import AnalysisResult
from crtstats.analysis._effects import effects_frame, randomisation_row
from crtstats.analysis._questionnaire_data import (
    QuestionnaireFrames,
    check_arm_events,
    constant_outcome,
    questionnaire_frames,
)
from crtstats.exceptions import ModelSpecificationError
from crtstats.models import ICCResult, icc, lmm, ols, permutation_test
from crtstats.scales import InstrumentKey, load_instrument, score_questionnaire
from crtstats.schema import ARMS

__all__ = ["ANCOVA_LABEL", "LINKED_LABEL", "LMM_LABEL", "QUESTIONNAIRE_IDS",
           "RANDOMISATION_LABEL", "QuestionnaireTable", "analyse_questionnaire",
           "outcome_names", "questionnaire_effects"]

QuestionnaireTable = Literal["user_questionnaires", "staff_questionnaires"]
"""The questionnaire tables of a trial."""
Instrument = str | PathLike[str] | InstrumentKey
"""An instrument key by name, by file path, or loaded."""
#: Each questionnaire table's person id column.
QUESTIONNAIRE_IDS: dict[str, str] = {"user_questionnaires": "respondent_id",
                                     "staff_questionnaires": "staff_id"}

LMM_LABEL = "LMM follow-up, team baseline mean (KR)"
LINKED_LABEL = "LMM linked respondents, own and team baseline (KR)"
ANCOVA_LABEL = "ANCOVA of team means (CR2)"
RANDOMISATION_LABEL = "randomisation test (stratified)"
#: Below this many df a CR2 test may not hold its level (Tipton 2015).
SMALL_DF = 4.0


def _stratum(frame: pd.DataFrame) -> str:
    return " + stratum" if frame["stratum"].nunique() > 1 else ""


def _icc_note(outcome: str, res: ICCResult) -> str:
    return (
        f"{outcome}: ICC at follow-up (one-way ANOVA of respondents in teams, unadjusted, "
        f"exact interval) {res.estimate:.4f} (95% CI {res.conf_low:.4f} to "
        f"{res.conf_high:.4f}), {res.nobs} respondents in {res.n_clusters} teams; the "
        "LMM rows show the model's own ICC, conditional on arm, stratum and the team "
        "baseline mean."
    )


def _linked_fit(frames: QuestionnaireFrames, outcome: str, out: Collector,
                icc_res: ICCResult) -> None:
    """The secondary LMM of the linked respondents, adjusted for their own baseline."""
    data = frames.linked
    teams = data.drop_duplicates("team_id")["arm"].value_counts()
    teams = teams.reindex(list(ARMS), fill_value=0)
    if (teams < 2).any():
        out.notes.append(
            f"{outcome}: the linked analysis needs people scored at both waves in at least "
            f"two teams per arm; found {len(data)} such people, in teams per arm "
            f"{teams.to_dict()}. It is not reported.")
        return
    formula = f"{outcome} ~ arm{_stratum(data)} + own_baseline + {frames.covariate}"
    try:
        res = lmm(formula, data, cluster="team_id", reml=True, ddf="kenward-roger")
    except ModelSpecificationError as exc:  # NotEstimableError too
        out.notes.append(f"{outcome}: the linked analysis is not possible: {exc}")
        return
    out.add_fit(outcome, LINKED_LABEL, "secondary", "difference", res, ARM_TERM, icc_res)
    out.notes.append(
        f"{outcome}, {LINKED_LABEL}: {len(data)} people scored at both waves, in "
        f"{data['team_id'].nunique()} teams.")


def _ancova(team: pd.DataFrame, outcome: str, out: Collector, icc_res: ICCResult) -> None:
    """Team follow-up means on arm, stratum and the team baseline mean; CR2."""
    formula = f"follow_up_mean ~ arm{_stratum(team)} + team_baseline_mean"
    res = ols(formula, team, cluster="team_id", cov_type="CR2")
    out.add_fit(outcome, ANCOVA_LABEL, "sensitivity", "difference", res, ARM_TERM, icc_res)
    df = float(res.df_values[res.param_names.index(ARM_TERM)])
    if df < SMALL_DF:
        out.notes.append(
            f"{outcome}, {ANCOVA_LABEL}: the Bell-McCaffrey df of the arm effect are "
            f"{df:.2f} (below {SMALL_DF:g}); CR2 tests with so few df may not hold their "
            "level (Tipton 2015). The value is reported as the method gives it.")


def _randomisation(team: pd.DataFrame, outcome: str, out: Collector, n_resamples: int,
                   seed: int | None, icc_res: ICCResult, nobs: int) -> None:
    """Stratified randomisation test of the covariate-adjusted team means."""
    formula = f"follow_up_mean ~ team_baseline_mean{_stratum(team)}"
    null_fit = ols(formula, team, cluster="team_id", cov_type="classical")
    frame = team[["team_id", "arm", "stratum"]].assign(value=null_fit.resid)
    perm = permutation_test(frame, statistic="mean_difference", outcome="value", arm="arm",
                            cluster="team_id", strata="stratum", n_resamples=n_resamples,
                            seed=seed)
    out.notes += [f"{outcome}, randomisation test: {m}" for m in perm.warnings]
    out.rows.append(randomisation_row(
        perm, outcome=outcome, analysis=RANDOMISATION_LABEL, role="sensitivity",
        estimand=ESTIMAND, scale="difference", n_clusters=len(team), nobs=nobs,
        icc=icc_res))
    draws = "all allocations" if perm.exact else (
        f"{perm.n_resamples} random allocations (Monte Carlo SE {perm.mcse:.4f})")
    out.notes.append(
        f"{outcome}, randomisation test: teams re-allocated within strata; the statistic "
        f"is the arm difference in the residuals of the team follow-up means on "
        f"{formula.split('~')[1].strip()} (no arm); p from {draws}.")


def _continuous(frames: QuestionnaireFrames, outcome: str, linked: bool, out: Collector,
                n_resamples: int, seed: int | None) -> None:
    fu = frames.follow_up
    constant_outcome(fu[outcome], outcome)
    icc_res = icc(fu, outcome=outcome, cluster="team_id", method="anova")
    formula = f"{outcome} ~ arm{_stratum(fu)} + {frames.covariate}"
    res = lmm(formula, fu, cluster="team_id", reml=True, ddf="kenward-roger")
    out.add_fit(outcome, LMM_LABEL, "primary", "difference", res, ARM_TERM, icc_res)
    if linked:
        _linked_fit(frames, outcome, out, icc_res)
    _ancova(frames.teams, outcome, out, icc_res)
    _randomisation(frames.teams, outcome, out, n_resamples, seed, icc_res, len(fu))
    out.notes.append(_icc_note(outcome, icc_res))


def _prorated_note(scores: pd.DataFrame, outcome: str) -> list[str]:
    if "prorated" not in scores.columns:
        return []
    n = int(scores["prorated"].fillna(False).astype(bool).sum())
    return [f"{outcome}: {n} total(s) prorated from incompletely answered "
            "questionnaires."] if n else []


def questionnaire_effects(
    scores: pd.DataFrame,
    teams: pd.DataFrame,
    *,
    id_column: str,
    outcome: str,
    case: bool = False,
    linked: bool = False,
    n_resamples: int = 10000,
    seed: int | None = 20140301,
) -> AnalysisResult:
    """Pre-specified analyses of one scored questionnaire outcome.

    Parameters
    ----------
    scores
        The scored questionnaire (:func:`crtstats.scales.score_questionnaire`): one row
        per sampled person and wave with ``team_id``, ``id_column``, ``wave``
        (``"baseline"``, ``"follow_up"``), ``responded`` (bool), ``total`` (NaN where
        not scored) and, for ``case=True``, ``case`` (0/1, missing where not scored).
    teams
        The teams table with ``team_id``, ``arm`` and ``stratum``.
    id_column
        The person id column (``"respondent_id"``, ``"staff_id"``); used only to link
        the waves and check the key, never shown.
    outcome
        The outcome's name in the effects rows and formulas (``"csq8"``,
        ``"ghq12_case"``): letters, digits and underscores.
    case
        Analyse the 0/1 ``case`` column (GLMM, GEE, cluster-level and the estimands)
        instead of the continuous ``total``.
    linked
        Add the secondary analysis of the people scored at both waves (the same id in
        the same team), adjusted for their own baseline score (continuous scores only).
    n_resamples, seed
        Re-randomisations of the randomisation tests (exact when the design allows at
        most this many allocations) and the seed of their draws.

    Returns
    -------
    AnalysisResult
        ``effects`` with the columns of :data:`crtstats.analysis.EFFECT_COLUMNS`, the
        primary row first; ``results`` each fit under ``"<outcome>: <analysis>"``;
        ``notes`` the respondents per arm and wave (sampled, responded, scored), those
        analysed at follow-up, every exclusion, the ICC with its interval and the
        randomisation details.

    Raises
    ------
    InvalidParameterError
        If ``case`` or ``linked`` is not a bool.
    ModelSpecificationError
        If a column is missing, a wave, arm or team is unknown, a (team, id, wave)
        repeats, ``outcome`` is not a usable name, or an arm has fewer than two teams
        with a scored respondent at both waves.
    NotEstimableError
        If no respondent is scored at one of the waves, the follow-up outcome takes a
        single value, or (caseness) an arm has no case or only cases at follow-up.

    Warns
    -----
    BoundaryFitWarning, FewClustersWarning, SeparationWarning, ConvergenceWarning
        As issued by the fitters (also recorded in ``notes``).

    Notes
    -----
    For person ``j`` of team ``i`` at follow-up, with ``m_i`` the mean baseline score of
    the team's scored baseline respondents:
    ``y_ij = mu + a A_i + stratum_i + beta m_i + b_i + e_ij``, ``b_i ~ N(0, tau)``,
    ``e_ij ~ N(0, sigma^2)``, fitted by REML (:func:`crtstats.lmm`) with Kenward-Roger
    df for ``a``. Its arm effect is efficiency-weighted (teams weighted by the
    precision of their mean) and conditional, which for an identity link equals the
    marginal difference. The linked model adds ``gamma y0_ij``, the person's own
    baseline score, on the people scored at both waves; it is secondary because
    those people are a subset (with fresh samples, often a small and selected one).
    The ANCOVA fits ``ybar_i = mu + a A_i + stratum_i + beta m_i + e_i`` to one row per
    team (cluster-average), CR2 with Bell-McCaffrey df; the randomisation test uses the
    arm difference in the residuals of ``ybar_i`` on stratum and ``m_i``, re-allocating
    teams within strata. A team without a scored baseline respondent has no ``m_i``:
    it is left out of every analysis (counted in ``notes``) rather than imputed.

    Caseness: ``logit P(case_ij) = mu + a A_i + stratum_i + beta p_i + b_i`` with
    ``p_i`` the team's baseline proportion of cases, fitted by the Laplace-approximated
    restricted likelihood (``glmm(..., method="laplace-reml")``, as ``glmmTMB(...,
    REML = TRUE)``), between-within df; and the estimands of
    :func:`crtstats.analyse_admissions`.

    References
    ----------
    Kenward MG, Roger JH (1997). Biometrics 53:983-997.
    Bell RM, McCaffrey DF (2002). Survey Methodology 28(2):169-181.
    Kahan BC, Li F, Copas AJ, Harhay MO (2023). Int J Epidemiol 52:107-118.

    Examples
    --------
    >>> import numpy as np, pandas as pd, crtstats
    >>> rng = np.random.default_rng(1)
    >>> teams = pd.DataFrame({"team_id": [f"T{i:02d}" for i in range(12)],
    ...                       "arm": ["intervention", "control"] * 6,
    ...                       "stratum": [f"S{i // 4}" for i in range(12)]})
    >>> level = rng.normal(26.0, 2.0, (12, 2))  # team level at each wave
    >>> scores = pd.DataFrame([
    ...     {"team_id": f"T{i:02d}", "respondent_id": f"{i}-{w}-{j}", "wave": w,
    ...      "responded": True,
    ...      "total": float(np.clip(np.round(level[i, k] + rng.normal(0.0, 3.0)), 8, 32))}
    ...     for i in range(12) for k, w in enumerate(("baseline", "follow_up"))
    ...     for j in range(10)])
    >>> out = crtstats.analysis.questionnaire_effects(
    ...     scores, teams, id_column="respondent_id", outcome="csq8", n_resamples=500)
    >>> out.effects[["analysis", "role", "df_method"]].iloc[0].tolist()
    ['LMM follow-up, team baseline mean (KR)', 'primary', 'kenward-roger']

    In R: ``lme4::lmer(csq8 ~ arm + stratum + team_baseline_mean + (1 | team_id),
    REML = TRUE)`` with ``pbkrtest::get_Lb_ddf`` (or ``lmerTest``'s
    ``ddf = "Kenward-Roger"``); ``clubSandwich::coef_test(lm(follow_up_mean ~ arm +
    stratum + team_baseline_mean), vcov = "CR2", cluster = team_id)``.
    """
    check_option("case", case, (True, False))
    check_option("linked", linked, (True, False))
    frames = questionnaire_frames(scores, teams, id_column=id_column, outcome=outcome,
                                  case=case)
    out = Collector(notes=[*frames.notes, *_prorated_note(scores, outcome)])
    if case:
        constant_outcome(frames.follow_up[outcome], outcome)
        check_arm_events(frames.follow_up, outcome)
        if linked:
            out.notes.append(f"{outcome}: the linked analysis is for continuous scores; "
                             "the caseness analyses compare the follow-up samples.")
        binary_analyses(frames.follow_up, outcome, out, n_resamples, seed,
                        covariate=frames.covariate)
    else:
        _continuous(frames, outcome, linked, out, n_resamples, seed)
    rows: list[dict[str, Any]] = out.rows
    return AnalysisResult(effects=effects_frame(rows), results=dict(out.results),
                          notes=tuple(out.notes))


class _Trial(Protocol):
    teams: pd.DataFrame


def outcome_names(instrument: Instrument, scoring: str | None = None) -> tuple[str, str | None]:
    """The effects-row names of an instrument's score and caseness (``None`` if none).

    The score is the instrument key (``"csq8"``) when the key has a single scoring, and
    the key plus scoring (``"ghq12_ghq"``, ``"ghq12_likert"``) otherwise; caseness is
    the key plus ``_case`` (``"ghq12_case"``).

    Examples
    --------
    >>> outcome_names("csq8"), outcome_names("ghq12"), outcome_names("ghq12", "likert")
    (('csq8', None), ('ghq12_ghq', 'ghq12_case'), ('ghq12_likert', None))
    """
    key = load_instrument(instrument)
    chosen = key.scoring(scoring)
    score = key.key if len(key.scorings) == 1 else f"{key.key}_{chosen.name}"
    return score, (f"{key.key}_case" if chosen.has_caseness else None)


def _table(trial: _Trial, name: str) -> pd.DataFrame:
    frame = getattr(trial, name, None)
    if not isinstance(frame, pd.DataFrame):
        raise ModelSpecificationError(
            f"the questionnaire analysis needs the {name} table; the trial has "
            f"{'none' if frame is None else type(frame).__name__}. Load it with "
            f"crtstats.load_trial(..., {name}=...).")
    return frame


def analyse_questionnaire(
    trial: _Trial,
    *,
    table: QuestionnaireTable = "user_questionnaires",
    instrument: Instrument = "csq8",
    scoring: str | None = None,
    linked: bool = False,
    max_missing: int = 0,
    prorate: bool = False,
    n_resamples: int = 10000,
    seed: int | None = 20140301,
) -> AnalysisResult:
    """Score a trial's questionnaire table and run its pre-specified analyses.

    Parameters
    ----------
    trial
        A :class:`crtstats.TrialData` (or anything with ``teams`` and the ``table``).
    table
        ``"user_questionnaires"`` (id ``respondent_id``) or ``"staff_questionnaires"``
        (id ``staff_id``).
    instrument
        The instrument key (``"csq8"``, ``"ghq12"``), a key file's path or a loaded
        key (:func:`crtstats.scales.load_instrument`).
    scoring
        The key's scoring (``"ghq"``, ``"likert"``); default its first.
    linked
        Add the secondary analysis of the people answering at both waves, adjusted for
        their own baseline score (see :func:`questionnaire_effects`).
    max_missing, prorate
        The missing-item rule of :func:`crtstats.scales.score_questionnaire`: by default
        no total with any item missing; proration only by explicit choice, flagged.
    n_resamples, seed
        The randomisation tests' re-randomisations and seed.

    Returns
    -------
    AnalysisResult
        The rows of :func:`questionnaire_effects` for the score (outcome named by
        :func:`outcome_names`: ``"csq8"``, ``"ghq12_ghq"``...) and, for a scoring with
        caseness, then those of the caseness (``"ghq12_case"``); fits and notes of both.

    Raises
    ------
    InvalidParameterError
        If ``table`` or another option is not allowed.
    ModelSpecificationError, NotEstimableError, SchemaValidationError, ScaleKeyError
        As :func:`questionnaire_effects` and :func:`crtstats.scales.score_questionnaire`.

    Warns
    -----
    ProrationWarning
        When a total was prorated; and the fitters' warnings.

    Notes
    -----
    See :func:`questionnaire_effects` for the models. The score's primary analysis is
    the LMM of the follow-up score with the team baseline mean; the caseness's is the
    GLMM with the team baseline proportion of cases.

    Examples
    --------
    >>> import numpy as np, pandas as pd, crtstats
    >>> rng = np.random.default_rng(2)
    >>> teams = pd.DataFrame({"team_id": [f"T{i:02d}" for i in range(12)],
    ...                       "arm": ["intervention", "control"] * 6,
    ...                       "stratum": [f"S{i // 4}" for i in range(12)]})
    >>> level = rng.normal(0.0, 0.4, (12, 2))
    >>> rows = [{"team_id": f"T{i:02d}", "respondent_id": f"{i}{w}{j}", "wave": w,
    ...          **{f"csq8_{k:02d}": int(np.clip(np.round(3.2 + level[i, v]
    ...                                                   + rng.normal(0, 0.6)), 1, 4))
    ...             for k in range(1, 9)}}
    ...         for i in range(12) for v, w in enumerate(("baseline", "follow_up"))
    ...         for j in range(10)]
    >>> from types import SimpleNamespace
    >>> trial = SimpleNamespace(teams=teams, user_questionnaires=pd.DataFrame(rows))
    >>> out = crtstats.analyse_questionnaire(trial, n_resamples=500)
    >>> out.effects.loc[0, ["outcome", "role"]].tolist()
    ['csq8', 'primary']

    R: ``lme4::lmer(csq8 ~ arm + stratum + team_baseline_mean + (1 | team_id))`` with
    Kenward-Roger df (``pbkrtest``), as in :func:`questionnaire_effects`.
    """
    check_option("table", table, get_args(QuestionnaireTable))
    teams, data = _table(trial, "teams"), _table(trial, table)
    key = load_instrument(instrument)
    chosen = key.scoring(scoring)
    scores = score_questionnaire(data, key, scoring=chosen.name, max_missing=max_missing,
                                 prorate=prorate)
    score_name, case_name = outcome_names(key, chosen.name)
    common: dict[str, Any] = {"id_column": QUESTIONNAIRE_IDS[table],
                              "n_resamples": n_resamples, "seed": seed}
    parts = [questionnaire_effects(scores, teams, outcome=score_name, linked=linked,
                                   **common)]
    if case_name is not None:
        parts.append(questionnaire_effects(scores, teams, outcome=case_name, case=True,
                                           **common))
    return AnalysisResult(
        effects=pd.concat([p.effects for p in parts], ignore_index=True),
        results={k: v for p in parts for k, v in p.results.items()},
        notes=tuple(n for p in parts for n in p.notes))

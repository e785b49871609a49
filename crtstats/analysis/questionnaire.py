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

from typing import Any

import pandas as pd

from crtstats._options import check_option
from crtstats.analysis._binary import ARM_TERM, ESTIMAND, Collector, binary_analyses
from crtstats.analysis._common import AnalysisResult
from crtstats.analysis._effects import effects_frame, randomisation_row
from crtstats.analysis._questionnaire_data import (
    QuestionnaireFrames,
    constant_outcome,
    questionnaire_frames,
)
from crtstats.exceptions import ModelSpecificationError
from crtstats.models import ICCResult, icc, lmm, ols, permutation_test
from crtstats.schema import ARMS

__all__ = ["ANCOVA_LABEL", "LINKED_LABEL", "LMM_LABEL", "RANDOMISATION_LABEL",
           "questionnaire_effects"]

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
        ``notes`` the respondents per arm and wave (sampled, responded, scored), every
        exclusion, the ICC with its interval and the randomisation details.

    Raises
    ------
    InvalidParameterError
        If ``case`` or ``linked`` is not a bool.
    ModelSpecificationError
        If a column is missing, a wave, arm or team is unknown, a (team, id, wave)
        repeats, ``outcome`` is not a usable name, or an arm has fewer than two teams
        with a scored respondent at both waves.
    NotEstimableError
        If no respondent is scored at one of the waves, or the follow-up outcome takes a
        single value.

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
    ``p_i`` the team's baseline proportion of cases, between-within df; and the
    estimands of :func:`crtstats.analyse_admissions`.

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
    >>> scores = pd.DataFrame([
    ...     {"team_id": t, "respondent_id": f"{t}-{w}-{j}", "wave": w, "responded": True,
    ...      "total": float(rng.integers(14, 33))}
    ...     for t in teams["team_id"] for w in ("baseline", "follow_up") for j in range(8)])
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

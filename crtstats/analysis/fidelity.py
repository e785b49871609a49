"""The pre-specified fidelity analyses of a CORE-style trial.

Two analyses of each fidelity outcome (the total and each domain mean):

* a repeated-measures linear mixed model of every review, ``outcome ~ arm * review +
  stratum`` with a random intercept per team and Kenward-Roger inference, giving the arm
  effect at 6 and at 12 months;
* a team-level ANCOVA of the 12-month score on arm, the baseline score and stratum, with
  CR2 (Bell-McCaffrey) or classical standard errors;
* a team fixed-effects difference-in-differences (:func:`fidelity_did`), always a
  sensitivity analysis.

``method`` says which of the first two is the primary analysis; the other is reported as
a sensitivity analysis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import pandas as pd

from crtstats._options import check_option, require_columns
from crtstats.analysis._common import AnalysisResult
from crtstats.analysis._did import DID_COV_TYPE, did_fit, did_term
from crtstats.analysis._effects import effect_row, effects_frame
from crtstats.exceptions import ModelSpecificationError, NotEstimableError
from crtstats.models import CRTResult, lmm, ols
from crtstats.schema import ARMS, REVIEWS

__all__ = ["FidelityMethod", "FidelityAncovaCov", "REVIEW_ORDER", "analyse_fidelity",
           "fidelity_did"]

FidelityMethod = Literal["lmm", "ancova"]
"""Which analysis is primary."""

FidelityAncovaCov = Literal["CR2", "classical"]
"""Standard errors of the team-level ANCOVA."""

#: The reviews in time order (from the fidelity schema); baseline is the reference level.
REVIEW_ORDER = REVIEWS
#: The arms, reference (control) first, from the teams schema.
ARM_LEVELS = ARMS
ARM_TERM = f"arm[T.{ARMS[1]}]"
LMM_LABEL = "LMM arm x review (KR)"
DID_LABEL = f"team FE DiD ({DID_COV_TYPE})"
ICC_NOTE = (
    "icc is the team-level intra-cluster correlation of the LMM (tau / (tau + sigma^2), "
    "conditional on arm, review and stratum); no interval is computed for it."
)
#: Below this many df a CR2 test may not hold its level (Tipton 2015).
SMALL_DF = 4.0


@dataclass(frozen=True)
class _Fitted:
    """One analysis of one outcome: its fit, its effects and its notes."""

    label: str
    result: CRTResult
    effects: list[tuple[str, dict[str, float]]]  # (estimand, weights)
    notes: list[str]


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    require_columns(
        frame, columns,
        used_by=f"the fidelity analysis as {what} (pass the output of "
        "crtstats.score_fidelity as scores and the teams table as teams)",
    )


def _default_outcomes(scores: pd.DataFrame) -> list[str]:
    """``total`` and every domain mean (``<domain>_mean``) that ``scores`` has."""
    domains = [c for c in scores.columns if c.endswith("_mean") and c != "mean_item"]
    return ["total", *domains]


def _check_values(column: pd.Series, allowed: Sequence[str], what: str) -> None:
    values = column.dropna().astype(str)
    bad = sorted(set(values) - set(allowed))
    if bad or column.isna().any():
        shown = bad + (["<missing>"] if column.isna().any() else [])
        raise ModelSpecificationError(
            f"{what} must be one of {list(allowed)}; found {shown}. Rename the values "
            "(or map the column names) before the analysis."
        )


def _validate(scores: pd.DataFrame, teams: pd.DataFrame, outcomes: Sequence[str]) -> None:
    """Columns, allowed values, unique keys and known teams; raise on the first problem."""
    _require(scores, ["team_id", "review", *outcomes], "scores")
    _require(teams, ["team_id", "arm", "stratum"], "teams")
    _check_values(scores["review"], REVIEW_ORDER, "scores['review']")
    _check_values(teams["arm"], ARM_LEVELS, "teams['arm']")
    if teams["team_id"].duplicated().any():
        dup = sorted(teams.loc[teams["team_id"].duplicated(), "team_id"].astype(str))
        raise ModelSpecificationError(f"teams lists team_id {dup} more than once.")
    key = scores[["team_id", "review"]].astype(str)
    if key.duplicated().any():
        pairs = [tuple(p) for p in key[key.duplicated()].drop_duplicates().to_numpy()]
        raise ModelSpecificationError(
            f"scores has more than one row for (team_id, review) {pairs[:5]}; one review "
            "per team and time point is expected."
        )
    unknown = sorted(set(scores["team_id"].astype(str)) - set(teams["team_id"].astype(str)))
    if unknown:
        raise ModelSpecificationError(
            f"scores has team_id {unknown} that the teams table does not list."
        )
    if teams["stratum"].isna().any():
        raise ModelSpecificationError("teams['stratum'] has missing values; fill them in.")


def _long_frame(
    scores: pd.DataFrame, teams: pd.DataFrame, outcomes: Sequence[str]
) -> tuple[pd.DataFrame, list[str]]:
    """Scores joined to arm and stratum, with ordered review and arm; notes."""
    _validate(scores, teams, outcomes)
    keep = ["team_id", "review", *outcomes]
    if "prorated" in scores.columns:
        keep.append("prorated")
    frame = scores[keep].copy()
    frame["team_id"] = frame["team_id"].astype(str)
    info = teams[["team_id", "arm", "stratum"]].astype(str)
    frame = frame.merge(info, on="team_id", how="left", validate="many_to_one")
    frame["review"] = pd.Categorical(frame["review"].astype(str), categories=REVIEW_ORDER)
    frame["arm"] = pd.Categorical(frame["arm"], categories=ARM_LEVELS)
    counts = frame["review"].value_counts().reindex(list(REVIEW_ORDER), fill_value=0)
    notes = [
        "reviews scored: " + ", ".join(f"{r} {int(n)}" for r, n in counts.items()) + "."
    ]
    absent = sorted(set(info["team_id"]) - set(frame["team_id"]))
    if absent:
        notes.append(f"{len(absent)} team(s) in the teams table have no scores: {absent}.")
    if "prorated" in frame.columns and frame["prorated"].astype(bool).any():
        notes.append(
            f"{int(frame['prorated'].astype(bool).sum())} review total(s) were prorated "
            "from incompletely scored reviews."
        )
    return frame, notes


def _one_arm_reviews(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Leave out follow-up reviews that only one arm has; say why in a note.

    With no team of one arm reviewed at a time point, no model can compare the arms
    there: the arm x review term is not identified (lme4 would drop the column). Those
    rows are left out of every analysis, and the effect at that review is reported as
    not possible, so a trial with, say, no control reviews at 6 months still gives its
    12-month effects.
    """
    notes = []
    keep = pd.Series(True, index=frame.index)
    for review in REVIEW_ORDER[1:]:
        at = frame["review"] == review
        arms = set(frame.loc[at, "arm"].astype(str))
        if at.any() and arms != set(ARM_LEVELS):
            missing = sorted(set(ARM_LEVELS) - arms)
            notes.append(
                f"the {int(at.sum())} {review} review(s) of the {sorted(arms)[0]} arm are "
                f"left out of the fidelity analyses: no {missing[0]} team was reviewed at "
                f"{review}, so the arm effect at {review} cannot be estimated."
            )
            keep &= ~at
    return frame.loc[keep].reset_index(drop=True), notes


def _ancova_possible(frame: pd.DataFrame, outcome: str) -> str | None:
    """Why the 12-month ANCOVA cannot be fitted when an arm has no 12m review at all."""
    at = frame.loc[frame["review"] == "12m"]
    arms = set(at.loc[at[outcome].notna(), "arm"].astype(str))
    if arms == set(ARM_LEVELS):
        return None
    if not arms:
        why = "no team has a 12m value (an interim analysis before the 12-month review?)"
    else:
        why = f"only the {sorted(arms)[0]} arm has 12m values"
    return f"{outcome}: the ANCOVA of the 12-month score is not possible: {why}."


def _stratum_term(frame: pd.DataFrame) -> str:
    return " + stratum" if frame["stratum"].nunique() > 1 else ""


def _fit_lmm(frame: pd.DataFrame, outcome: str) -> _Fitted:
    """Repeated-measures LMM of one outcome; arm effect at each follow-up review."""
    used = frame[frame[outcome].notna()].copy()
    notes = []
    n_missing = len(frame) - len(used)
    if n_missing:
        notes.append(
            f"{outcome}, {LMM_LABEL}: {n_missing} review(s) without a value excluded."
        )
    present = [r for r in REVIEW_ORDER if (used["review"] == r).any()]
    used["review"] = used["review"].cat.remove_unused_categories()
    formula = f"{outcome} ~ arm * review{_stratum_term(used)}"
    result = lmm(formula, used, cluster="team_id", reml=True, ddf="kenward-roger")
    notes += [f"{outcome}, {LMM_LABEL}: {m}" for m in result.warnings]
    effects = []
    for review in REVIEW_ORDER[1:]:
        if review not in present:
            notes.append(f"{outcome}, {LMM_LABEL}: no {review} reviews; no effect at {review}.")
            continue
        weights = {ARM_TERM: 1.0, f"{ARM_TERM}:review[T.{review}]": 1.0}
        effects.append((f"arm effect at {review}", weights))
    return _Fitted(LMM_LABEL, result, effects, notes)


def _ancova_frame(frame: pd.DataFrame, outcome: str) -> tuple[pd.DataFrame, list[str]]:
    """One row per team: baseline and 12-month value of ``outcome``; exclusions noted."""
    wide = frame.pivot(index="team_id", columns="review", values=outcome)
    wide = wide.reindex(columns=list(REVIEW_ORDER))
    teams = frame.drop_duplicates("team_id").set_index("team_id")[["arm", "stratum"]]
    data = teams.join(
        wide[["baseline", "12m"]].rename(
            columns={"baseline": f"{outcome}_baseline", "12m": f"{outcome}_12m"}
        )
    ).reset_index()
    complete = data[[f"{outcome}_baseline", f"{outcome}_12m"]].notna().all(axis=1)
    notes = []
    if not complete.all():
        lacking = sorted(data.loc[~complete, "team_id"])
        notes.append(
            f"{outcome}, ANCOVA: {len(lacking)} team(s) without both a baseline and a 12m "
            f"value excluded: {lacking}."
        )
    return data.loc[complete].reset_index(drop=True), notes


def _fit_ancova(frame: pd.DataFrame, outcome: str, cov_type: FidelityAncovaCov) -> _Fitted:
    """Team-level ANCOVA of the 12-month value on arm, baseline and stratum."""
    data, notes = _ancova_frame(frame, outcome)
    per_arm = data["arm"].value_counts().reindex(list(ARM_LEVELS), fill_value=0)
    if (per_arm < 2).any():
        raise ModelSpecificationError(
            f"{outcome}: the ANCOVA needs at least two teams per arm with both a baseline "
            f"and a 12m value; found {per_arm.to_dict()}. Check the reviews in scores."
        )
    label = f"ANCOVA 12m ({cov_type})"
    formula = f"{outcome}_12m ~ arm + {outcome}_baseline{_stratum_term(data)}"
    result = ols(formula, data, cluster="team_id", cov_type=cov_type)
    notes += [f"{outcome}, {label}: {m}" for m in result.warnings]
    effect = result.contrast({ARM_TERM: 1.0}, name="arm effect at 12m")
    if cov_type == "CR2" and effect.df < SMALL_DF:
        notes.append(
            f"{outcome}, {label}: the Bell-McCaffrey df of the arm effect are "
            f"{effect.df:.2f} (below {SMALL_DF:g}); CR2 tests with so few df may not hold "
            "their level (Tipton 2015). The value is reported as the method gives it."
        )
    return _Fitted(label, result, [("arm effect at 12m", {ARM_TERM: 1.0})], notes)


def _fit_did(frame: pd.DataFrame, outcome: str) -> _Fitted:
    """Team fixed-effects DiD of one outcome; arm x review effect at each follow-up."""
    result = did_fit(frame, outcome, reviews=REVIEW_ORDER, treated=ARM_LEVELS[1])
    notes = []
    if result.info["n_excluded"]:
        notes.append(f"{outcome}, {DID_LABEL}: {result.info['n_excluded']} review(s) "
                     "without a value excluded.")
    effects = [(f"arm effect on change to {r}", {did_term(r): 1.0})
               for r in REVIEW_ORDER[1:] if did_term(r) in result.param_names]
    return _Fitted(DID_LABEL, result, effects, notes)


def _effect_rows(outcome: str, fitted: _Fitted, role: str) -> list[dict[str, Any]]:
    # the primary analysis is primary at its last review only (12m); earlier: secondary
    last = len(fitted.effects) - 1
    return [effect_row(fitted.result, weights, outcome=outcome, analysis=fitted.label,
                       role="secondary" if role == "primary" and k < last else role,
                       estimand=estimand, scale="difference")
            for k, (estimand, weights) in enumerate(fitted.effects)]


def fidelity_did(
    scores: pd.DataFrame, teams: pd.DataFrame, *, outcome: str = "total",
) -> CRTResult:
    """Team fixed-effects difference-in-differences of the fidelity panel (PanelOLS).

    Parameters
    ----------
    scores
        Scored reviews (:func:`crtstats.score_fidelity`): ``team_id``, ``review`` and
        ``outcome``, one row per team and review; a review may be absent or NaN.
    teams
        The teams table with ``team_id``, ``arm`` and ``stratum``.
    outcome
        The score column to analyse.

    Returns
    -------
    CRTResult
        ``model="panel_ols"``; one coefficient per follow-up review with data,
        ``arm[T.intervention]:review[T.<review>]``, the arm x review effect (the
        difference between arms in the change from baseline to that review), with the
        team-clustered covariance and t tests on ``G - 1`` df (``df_method`` is
        ``"clusters - 1"``). ``info`` holds ``n_excluded`` (reviews without a value),
        ``df_model`` (every coefficient, team and review effects included) and
        ``df_resid``.

    Raises
    ------
    ModelSpecificationError
        If a column or team is missing or unknown, an arm has fewer than two teams
        with a value, or a follow-up review lacks one of the arms.

    Notes
    -----
    For team ``i`` at review ``r``:
    ``y_ir = alpha_i + gamma_r + delta_r A_i [r != baseline] + e_ir``, fitted by
    least squares with team effects ``alpha_i`` and review effects ``gamma_r``
    (:class:`linearmodels.PanelOLS` with ``entity_effects`` and ``time_effects``). The
    team effects absorb arm, stratum and every other team-level difference, so the DiD
    rests on within-team change only; in the LMM of :func:`analyse_fidelity` the same
    ``delta_r`` is the arm x review interaction.

    The covariance is clustered by team with PanelOLS's ``debiased=True``,
    ``group_debias=True`` and the effects counted (``count_effects=True``):
    ``V = G/(G-1) * (n-1)/(n-k) * (X'X)^-1 (sum_g X_g' e_g e_g' X_g) (X'X)^-1`` with ``k``
    every coefficient of the dummy-variable regression (``G + R - 1`` effects plus the
    interactions). This is ``sandwich::vcovCL(type = "HC1")`` of the ``lm`` with team
    and review factors (not clubSandwich's CR1, which is ``G/(G-1)`` alone), and is
    conservative when teams are few: with the example's 25 teams and 70 scored reviews
    ``(n-1)/(n-k) = 69/41``, about 1.7. Tests and 95% intervals use t with ``G - 1`` df.

    References
    ----------
    Cameron AC, Miller DL (2015). A practitioner's guide to cluster-robust inference.
    Journal of Human Resources 50(2):317-372.

    Examples
    --------
    >>> import crtstats
    >>> trial = crtstats.datasets.load_example()
    >>> scores = crtstats.score_fidelity(trial.fidelity)
    >>> res = crtstats.analysis.fidelity_did(scores, trial.teams)
    >>> res.model, res.df_method, int(res.df.iloc[0])
    ('panel_ols', 'clusters - 1', 24)

    In R: ``fit <- lm(total ~ factor(team_id) + review + arm:review)`` with
    ``lmtest::coeftest(fit, vcov = sandwich::vcovCL(fit, cluster = ~team_id,
    type = "HC1"), df = G - 1)``.
    """
    frame, _ = _long_frame(scores, teams, [outcome])
    return _fit_did(frame, outcome).result


def analyse_fidelity(
    scores: pd.DataFrame,
    teams: pd.DataFrame,
    *,
    method: FidelityMethod = "lmm",
    ancova_cov_type: FidelityAncovaCov = "CR2",
    outcomes: Sequence[str] | None = None,
    did: bool = True,
) -> AnalysisResult:
    """Pre-specified fidelity analyses: LMM of all reviews, team-level ANCOVA and DiD.

    Parameters
    ----------
    scores
        Scored reviews, as returned by :func:`crtstats.score_fidelity`: one row per
        team and review with ``team_id``, ``review`` (``"baseline"``, ``"6m"``,
        ``"12m"``; a review may be absent), ``total`` and the domain scores; NaN where
        a score could not be computed.
    teams
        The teams table with ``team_id``, ``arm`` (``"control"``, ``"intervention"``)
        and ``stratum``.
    method
        The primary analysis: ``"lmm"`` (default) or ``"ancova"``; the other is
        labelled ``"sensitivity"``.
    ancova_cov_type
        ``"CR2"`` (default; one row per team, so this is HC2 with Bell-McCaffrey
        df) or ``"classical"`` (residual df).
    outcomes
        Score columns to analyse; by default ``total`` and every ``<domain>_mean``.
    did
        Whether to add the team fixed-effects difference-in-differences
        (:func:`fidelity_did`) as a sensitivity analysis (default ``True``).

    Returns
    -------
    AnalysisResult
        ``effects`` has the columns of :data:`crtstats.analysis.EFFECT_COLUMNS`, one row
        per outcome and analysis and estimand (arm effect at 6m and at 12m from the LMM,
        at 12m from the ANCOVA, the arm effect on the change from baseline to 6m and to
        12m from the DiD), primary rows first; ``icc`` is the LMM's (no CI is
        computed, so ``icc_low``/``icc_high`` are NaN) and NaN for the others.
        ``results`` holds each fit under ``"<outcome>: <analysis>"``. ``notes`` records
        every exclusion (reviews without a value, teams lacking a baseline or 12m
        value, teams without scores), prorated totals, boundary fits and very small
        CR2 df.

    Raises
    ------
    InvalidParameterError
        If ``method`` or ``ancova_cov_type`` is not an allowed value.
    ModelSpecificationError
        If ``outcomes`` is empty or repeats a column, a required column is absent, a
        review or arm value is unknown, a team or (team, review) repeats, scores name a
        team the teams table lacks, or a model cannot be fitted (e.g. an arm with fewer
        than two teams).
    NotEstimableError
        If ``method="ancova"`` and an arm has no 12-month value (an interim analysis):
        the primary analysis is not possible.

    Warns
    -----
    BoundaryFitWarning
        When the LMM's team variance is estimated as zero (also recorded in ``notes``).

    Notes
    -----
    LMM, for team ``i`` at review ``r``:
    ``y_ir = mu + a A_i + g_r + d_r A_i + stratum_i + b_i + e_ir`` with
    ``b_i ~ N(0, tau)``, fitted by REML (:func:`crtstats.lmm`); the arm effect at review
    ``r`` is ``a + d_r``, with Kenward-Roger df for that contrast. Baseline is the
    reference review and control the reference arm, so ``a`` is the baseline
    difference and the effect at ``r`` is the unadjusted difference at ``r``.

    ANCOVA, one row per team: ``y_i12 = mu + a A_i + beta y_i0 + stratum_i + e_i``
    (:func:`crtstats.ols`); ``a`` is the arm effect at 12 months adjusted for baseline.
    With 25 teams in 8 strata the CR2 df can be very small; they are reported as the
    method gives them.

    DiD: ``y_ir = alpha_i + gamma_r + d_r A_i + e_ir`` with team and review fixed
    effects and a team-clustered covariance (see :func:`fidelity_did`); ``d_r`` is the
    arm effect on the change from baseline to ``r``.

    Partial trials. A follow-up review that only one arm has (say no control team was
    reviewed at 6 months) cannot compare the arms: its rows are left out of all three
    analyses, with a note, and the other reviews' effects are reported. Before any
    12-month review (an interim analysis) the LMM gives the effect at 6 months, and the
    12-month ANCOVA, a sensitivity analysis, is noted as not possible.

    References
    ----------
    Kenward MG, Roger JH (1997). Small sample inference for fixed effects from
    restricted maximum likelihood. Biometrics 53:983-997.

    Bell RM, McCaffrey DF (2002). Bias reduction in standard errors for linear
    regression with multi-stage samples. Survey Methodology 28(2):169-181.

    Tipton E (2015). Small sample adjustments for robust variance estimation with
    meta-regression. Psychological Methods 20(3):375-393.

    Examples
    --------
    >>> import crtstats
    >>> trial = crtstats.datasets.load_example()
    >>> scores = crtstats.score_fidelity(trial.fidelity)
    >>> out = crtstats.analyse_fidelity(scores, trial.teams, outcomes=["total"])
    >>> print(out.effects[["analysis", "role", "estimand"]].to_string(index=False))
                     analysis        role                       estimand
        LMM arm x review (KR)   secondary               arm effect at 6m
        LMM arm x review (KR)     primary              arm effect at 12m
             ANCOVA 12m (CR2) sensitivity              arm effect at 12m
    team FE DiD (cluster HC1) sensitivity  arm effect on change to 6m
    team FE DiD (cluster HC1) sensitivity arm effect on change to 12m
    >>> out.notes[0]
    'reviews scored: baseline 25, 6m 24, 12m 25.'

    In R: ``lmerTest::lmer(total ~ arm * review + stratum + (1 | team_id))`` with
    ``emmeans`` contrasts and ``lmer.df = "kenward-roger"``; and
    ``lm(total_12m ~ arm + total_baseline + stratum)`` with
    ``clubSandwich::coef_test(fit, vcov = "CR2", cluster = team_id)``; the DiD as in
    :func:`fidelity_did`.
    """
    check_option("method", method, get_args(FidelityMethod))
    check_option("ancova_cov_type", ancova_cov_type, get_args(FidelityAncovaCov))
    check_option("did", did, (True, False))
    names = list(outcomes) if outcomes is not None else _default_outcomes(scores)
    if not names or len(set(names)) != len(names):
        raise ModelSpecificationError(
            f"outcomes must name at least one score column, each once; got {names}."
        )
    frame, notes = _long_frame(scores, teams, names)
    frame, excluded = _one_arm_reviews(frame)
    notes += excluded
    roles = {"lmm": "primary", "ancova": "sensitivity"}
    if method == "ancova":
        roles = {"lmm": "sensitivity", "ancova": "primary"}
    rows: list[dict[str, Any]] = []
    results: dict[str, CRTResult] = {}
    for outcome in names:
        fits = {"lmm": _fit_lmm(frame, outcome)}
        not_possible = _ancova_possible(frame, outcome)
        if not_possible is None:
            fits["ancova"] = _fit_ancova(frame, outcome, ancova_cov_type)
        elif method == "ancova":
            raise NotEstimableError(
                f"{not_possible} It is the primary analysis (method='ancova'); use "
                "method='lmm' for an interim analysis, which gives the effect at each "
                "review the data have."
            )
        else:
            notes.append(not_possible)
        if did:
            fits["did"] = _fit_did(frame, outcome)
            roles["did"] = "sensitivity"
        for kind in sorted(fits, key=lambda k: roles[k] != "primary"):
            fitted = fits[kind]
            rows += _effect_rows(outcome, fitted, roles[kind])
            results[f"{outcome}: {fitted.label}"] = fitted.result
            notes += fitted.notes
    notes.append(ICC_NOTE)
    return AnalysisResult(effects=effects_frame(rows), results=results, notes=tuple(notes))

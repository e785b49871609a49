"""The pre-specified admissions analyses of a CORE-style trial.

Person level (follow-up service users, a 0/1 outcome such as ``admitted``):

* primary: random-intercept logistic GLMM adjusted for stratum and the team's
  pre-period proportion, Laplace REML, between-within df (odds ratio);
* sensitivity: GEE with exchangeable working correlation (independence if the
  estimated correlation is negative) and the Kauermann-Carroll sandwich (marginal odds
  ratio); the two-stage cluster-level analysis (risk ratio and
  risk difference); a stratified randomisation test of the cluster-level ratio;
* both estimands, each as risk difference, risk ratio and odds ratio: the
  participant-average effect (independence GEE) and the cluster-average effect
  (independence GEE weighted by 1 / team size), unadjusted with the Mancl-DeRouen
  sandwich and t on G - 2 df; and both adjusted for stratum and ``pre_prop`` by
  model-robust standardisation with the leave-one-team-out jackknife;
* the informative-cluster-size check: the cluster-average minus participant-average
  risk difference (jackknife) and its stratified randomisation test.

Team level (follow-up admissions, bed days and readmissions per service user, from
``service_use``):

* primary: negative binomial (NB2) regression of the team's count with offset
  ``log(n_users)``, adjusted for stratum and the log pre-period rate (rate ratio);
* sensitivity: the two-stage cluster-level analysis of the rate (rate ratio) and its
  stratified randomisation test.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd

from crtstats._options import require_columns
from crtstats.analysis._binary import (
    ARM_TERM,
    Collector,
    binary_analyses,
    ics_limits,
    randomisation_test_row,
)
from crtstats.analysis._common import AnalysisResult
from crtstats.analysis._effects import effects_frame
from crtstats.exceptions import (
    ModelSpecificationError,
)
from crtstats.models import cluster_level, negative_binomial_rate

__all__ = ["COUNT_OUTCOMES", "analyse_admissions", "ics_limits", "negative_binomial_rate"]

#: Team-level counts of ``service_use`` analysed as rates per service user.
COUNT_OUTCOMES = {
    "admissions": "admissions per user",
    "bed_days": "bed days per user",
    "readmissions": "readmissions per user",
}


class _Trial(Protocol):
    teams: pd.DataFrame
    admissions: pd.DataFrame | None
    service_use: pd.DataFrame | None


def _check_trial(trial: _Trial, outcome: str) -> pd.DataFrame:
    adm = getattr(trial, "admissions", None)
    for name, table in (("teams", getattr(trial, "teams", None)), ("admissions", adm)):
        if table is None:
            raise ModelSpecificationError(
                f"the admissions analysis needs the {name} table; the trial has none."
            )
    if not isinstance(adm, pd.DataFrame):
        raise ModelSpecificationError(f"admissions must be a DataFrame; got {type(adm)}.")
    require_columns(
        trial.teams, ("team_id", "arm", "stratum"),
        used_by="the admissions analyses as the teams table (they adjust for the stratum "
        "of randomisation)",
    )
    require_columns(adm, ("team_id", "period", outcome),
                    used_by="the admissions analyses as the admissions table")
    values = set(pd.unique(adm[outcome].dropna()))
    if not values <= {0, 1}:
        raise ModelSpecificationError(
            f"outcome {outcome!r} must be 0/1 per service user; found values "
            f"{sorted(values - {0, 1})[:5]}."
        )
    return adm


def _person_frame(trial: _Trial, outcome: str, notes: list[str]) -> pd.DataFrame:
    """Follow-up users with arm, stratum and the team's pre-period proportion."""
    adm = _check_trial(trial, outcome)
    teams = trial.teams[["team_id", "arm", "stratum"]]
    pre = adm[adm["period"] == "pre"].groupby("team_id")[outcome].mean().rename("pre_prop")
    fu = adm[adm["period"] == "follow_up"]
    n_missing = int(fu[outcome].isna().sum())
    if n_missing:
        notes.append(f"{outcome}: {n_missing} follow-up service user(s) with a missing "
                     "outcome are left out.")
    fu = fu[fu[outcome].notna()]
    absent = sorted(set(teams["team_id"]) - set(fu["team_id"]))
    if absent:
        notes.append(f"{outcome}: {len(absent)} team(s) with no follow-up service users are "
                     f"left out: {absent}.")
    frame = fu.merge(teams, on="team_id", how="left").merge(
        pre.astype(float), on="team_id", how="left")
    no_pre = sorted(frame.loc[frame["pre_prop"].isna(), "team_id"].unique())
    if no_pre:
        notes.append(f"{outcome}: {len(no_pre)} team(s) with no pre-period users have no "
                     f"pre-period proportion and are left out of the adjusted analyses: "
                     f"{no_pre}.")
    frame[outcome] = frame[outcome].astype(float)
    frame["arm"] = pd.Categorical(frame["arm"].astype(str), ["control", "intervention"])
    return frame


def _team_frame(trial: _Trial, notes: list[str]) -> pd.DataFrame | None:
    su = trial.service_use
    if su is None:
        notes.append("no service_use table: the team-level rate analyses are not run.")
        return None
    teams = trial.teams[["team_id", "arm", "stratum"]]
    pre = su[su["period"] == "pre"].set_index("team_id")
    fu = su[su["period"] == "follow_up"].merge(teams, on="team_id", how="left")
    absent = sorted(set(teams["team_id"]) - set(fu["team_id"]))
    if absent:
        notes.append(f"service_use: {len(absent)} team(s) with no follow-up row are left out: "
                     f"{absent}.")
    no_pre = sorted(set(fu["team_id"]) - set(pre.index))
    if no_pre:
        notes.append(f"service_use: {len(no_pre)} team(s) with no pre-period row have no "
                     f"pre-period rate and are left out of the rate analyses: {no_pre}.")
    counts = [c for c in COUNT_OUTCOMES if c in su.columns]
    for count in sorted(set(COUNT_OUTCOMES) - set(counts)):
        notes.append(f"service_use has no {count} column (it is optional): "
                     f"{COUNT_OUTCOMES[count]} is not analysed.")
    for count in counts:
        pre_count = fu["team_id"].map(pre[count]).astype(float)
        zero = pre_count == 0
        if zero.any():
            notes.append(f"{count}: 0.5 added to the zero pre-period count of team(s) "
                         f"{list(fu.loc[zero, 'team_id'])} for the log pre-period rate.")
        rate = pre_count.where(~zero, 0.5) / fu["team_id"].map(pre["n_users"]).astype(float)
        fu[f"log_pre_{count}_rate"] = np.log(rate)
    fu["log_n_users"] = np.log(fu["n_users"].astype(float))
    fu["arm"] = pd.Categorical(fu["arm"].astype(str), ["control", "intervention"])
    for count in (*counts, "n_users"):
        fu[count] = fu[count].astype(float)
    return fu


def _rate_analyses(team: pd.DataFrame, out: Collector, n_resamples: int,
                   seed: int | None) -> None:
    for count, label in COUNT_OUTCOMES.items():
        if count not in team.columns:  # an optional count the trial does not record
            continue
        covariate = f"log_pre_{count}_rate"
        data = team.dropna(subset=[covariate])
        formula = f"{count} ~ arm + stratum + {covariate}"
        nb = negative_binomial_rate(formula, data, exposure="n_users", cluster="team_id")
        out.add_fit(label, "negative binomial (team level)", "primary", "rate ratio", nb,
                    ARM_TERM)
        cl = cluster_level(data, outcome=count, arm="arm", cluster="team_id",
                           outcome_type="count", scale="ratio", exposure="n_users",
                           covariates=["stratum", covariate])
        out.add_fit(label, "cluster-level two-stage", "sensitivity", "rate ratio", cl,
                    "log_ratio")
        randomisation_test_row(cl, data, label, "rate ratio", out, n_resamples, seed)


def analyse_admissions(
    trial: _Trial,
    *,
    outcome: str = "admitted",
    n_resamples: int = 10000,
    seed: int | None = 20140301,
) -> AnalysisResult:
    """Pre-specified admissions analyses: GLMM, GEE, cluster-level and randomisation.

    Parameters
    ----------
    trial
        A :class:`crtstats.TrialData` (or anything with ``teams``, ``admissions`` and
        ``service_use`` tables, such as :func:`crtstats.datasets.load_example`).
    outcome
        The 0/1 person-level outcome in ``admissions`` (``"admitted"`` or
        ``"readmitted"``).
    n_resamples, seed
        Re-randomisations of the randomisation tests (exact when the design allows at
        most this many allocations) and the seed of their draws.

    Returns
    -------
    AnalysisResult
        ``effects`` with the columns of :data:`crtstats.analysis.EFFECT_COLUMNS`:
        odds ratios (GLMM primary, GEE sensitivity), cluster-level risk ratio and risk
        difference, and randomisation tests for ``outcome``; the participant- and
        cluster-average risk difference, risk ratio and odds ratio, unadjusted
        (independence GEE, unweighted and weighted by 1 / size, Mancl-DeRouen) and
        standardised (jackknife); then for each team count
        (admissions, bed days, readmissions per service user) the negative binomial
        rate ratio (primary), the cluster-level rate ratio and its randomisation test.
        Ratios are exponentiated. The person-level rows carry the ICC of ``outcome``
        with Smith's interval. ``results`` holds each fit; ``notes`` the exclusions.

    Raises
    ------
    ModelSpecificationError
        If a table or column is missing, or ``outcome`` is not 0/1.

    Warns
    -----
    BoundaryFitWarning, ConvergenceWarning, SeparationWarning, ContinuityCorrectionWarning
        As raised by the fitters (also recorded in ``notes``).

    Notes
    -----
    The person-level models are ``outcome ~ arm + stratum + pre_prop`` on the
    follow-up users, ``pre_prop`` the team's pre-period proportion; the team-level
    models are ``count ~ arm + stratum + log(pre-period count / pre-period users)``
    with offset ``log(n_users)``. The randomisation tests re-allocate teams within
    strata and use the mean difference of the two-stage log-ratio residuals, so their
    estimate is the cluster-level ratio. The standardised estimands follow Li et al.
    (2025) with the working model ``outcome ~ arm + stratum + pre_prop``
    (:func:`crtstats.models.estimands`); ``notes`` gives the informative-cluster-size
    check (:func:`crtstats.models.informative_size_test`) and what it can show. Every
    row's ``population``, ``measure`` and ``conditioning`` say what it estimates.
    People with a missing outcome, teams with no
    follow-up users and teams without a pre-period value are left out and counted in
    ``notes``.

    References
    ----------
    Hayes RJ, Moulton LH (2017). Cluster Randomised Trials, 2nd ed. CRC.
    Li P, Redden DT (2015). BMC Medical Research Methodology 15:38.
    Li F, Tong J, Fang X, Cheng C, Kahan BC, Wang B (2025). Statistics in Medicine,
    doi:10.1002/sim.70270.
    Kahan BC, Li F, Copas AJ, Harhay MO (2023). Int J Epidemiol 52:107-118.

    Examples
    --------
    >>> import warnings, crtstats
    >>> trial = crtstats.datasets.load_example()
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", crtstats.BoundaryFitWarning)
    ...     warnings.simplefilter("ignore", crtstats.ContinuityCorrectionWarning)
    ...     out = crtstats.analyse_admissions(trial, n_resamples=200)
    >>> out.effects.loc[0, ["analysis", "role", "scale"]].tolist()
    ['GLMM (between-within)', 'primary', 'odds ratio']

    R: ``glmmTMB::glmmTMB(admitted ~ arm + stratum + pre_prop + (1 | team_id), binomial,
    REML = TRUE)``,
    ``geepack::geeglm(...)``, ``MASS::glm.nb(admissions ~ arm + stratum +
    log_pre_rate + offset(log(n_users)))``.
    """
    if not isinstance(outcome, str):
        raise ModelSpecificationError(f"outcome must be a column name; got {outcome!r}.")
    out = Collector()
    frame = _person_frame(trial, outcome, out.notes)
    binary_analyses(frame, outcome, out, n_resamples, seed)
    team = _team_frame(trial, out.notes)
    if team is not None:
        _rate_analyses(team, out, n_resamples, seed)
    return AnalysisResult(effects=effects_frame(out.rows), results=dict(out.results),
                          notes=tuple(out.notes))

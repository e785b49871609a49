"""Simulation of a CORE-like cluster-randomised trial of Crisis Resolution Teams."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from crtstats.datasets._questionnaires import (
    QUESTIONNAIRE_EFFECTS,
    staff_questionnaires,
    user_questionnaires,
)
from crtstats.exceptions import InvalidParameterError

__all__ = ["TRUE_EFFECTS", "SimulatedTrial", "simulate_trial"]

N_ITEMS = 39
REVIEWS = ("baseline", "6m", "12m")
PERIODS = ("pre", "follow_up")
#: Between-team SD of the readmission log-odds in each period (no arm effect).
READMISSION_TEAM_SD = 0.6

#: The effects built into :func:`simulate_trial`, on the scales the analyses report.
TRUE_EFFECTS: Mapping[str, float] = {
    # latent mean-item-score gain of intervention over control teams
    "fidelity_mean_item_gain_6m": 0.20,
    "fidelity_mean_item_gain_12m": 0.35,
    # the same on the 39-195 total scale (39 x the mean-item gain), before rounding
    "fidelity_total_gain_6m": 0.20 * N_ITEMS,
    "fidelity_total_gain_12m": 0.35 * N_ITEMS,
    # cluster-specific odds ratio of admission, intervention vs control, follow-up
    "admission_odds_ratio": 0.70,
    # between-team SD of the admission log-odds (random intercept), in each period
    "admission_team_sd": 0.40,
    # correlation of a team's admission log-odds effects in the pre and follow-up
    # periods: below 1, as team effects drift between periods in service records
    "admission_team_period_correlation": 0.50,
    # odds ratio of CRT readmission: no effect
    "readmission_odds_ratio": 1.0,
    # questionnaires at follow-up (crtstats.datasets._questionnaires): CSQ-8 total
    # about +1 point, GHQ-12 a little lower (less distress) in intervention teams
    **QUESTIONNAIRE_EFFECTS,
}


@dataclass(frozen=True)
class SimulatedTrial:
    """The tables of the crtstats data model, and the truth behind them.

    Attributes
    ----------
    teams, fidelity, admissions, service_use
        The tables, with the columns documented in the data model.
    user_questionnaires, staff_questionnaires
        The service users' CSQ-8 and the staff GHQ-12 questionnaires (None when not
        simulated): one row per person sampled and wave, ``responded`` false with empty
        items for a sampled non-responder.
    truth
        The true effects used to generate the data (:data:`TRUE_EFFECTS`) and the
        seed.
    """

    teams: pd.DataFrame
    fidelity: pd.DataFrame
    admissions: pd.DataFrame
    service_use: pd.DataFrame
    truth: Mapping[str, Any] = field(default_factory=dict)
    user_questionnaires: pd.DataFrame | None = None
    staff_questionnaires: pd.DataFrame | None = None

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables by name, as copies (the questionnaires only when present)."""
        tables = {
            "teams": self.teams.copy(),
            "fidelity": self.fidelity.copy(),
            "admissions": self.admissions.copy(),
            "service_use": self.service_use.copy(),
        }
        for name in ("user_questionnaires", "staff_questionnaires"):
            frame = getattr(self, name)
            if frame is not None:
                tables[name] = frame.copy()
        return tables


def _allocate(n_teams: int, n_intervention: int, n_strata: int, rng: np.random.Generator
              ) -> tuple[np.ndarray, np.ndarray]:
    """Spread teams over strata, then allocate within strata as evenly as possible."""
    strata = np.sort(np.arange(n_teams) % n_strata)
    sizes = np.bincount(strata, minlength=n_strata)
    share = sizes * n_intervention / n_teams
    n_int = np.floor(share).astype(int)
    # hand the remaining intervention places to the strata with the largest remainders,
    # ties broken at random
    order = np.lexsort((rng.random(n_strata), -(share - n_int)))
    n_int[order[: n_intervention - n_int.sum()]] += 1
    arm = np.empty(n_teams, dtype=object)
    for s in range(n_strata):
        members = np.flatnonzero(strata == s)
        chosen = rng.permutation(members)[: n_int[s]]
        arm[members] = "control"
        arm[chosen] = "intervention"
    return strata, arm


def _fidelity(teams: pd.DataFrame, rng: np.random.Generator, start: dt.date) -> pd.DataFrame:
    n = len(teams)
    base_level = rng.normal(2.95, 0.28, size=n)  # latent mean item score at baseline
    item_offset = rng.normal(0.0, 0.45, size=N_ITEMS)
    item_offset[38] = 3.0  # item 39 (support in the home): nearly always scored 5
    is_int = (teams["arm"] == "intervention").to_numpy()
    gain = {"baseline": 0.0, "6m": 0.0, "12m": 0.0}
    rows: list[dict[str, Any]] = []
    control_no_6m = int(rng.choice(np.flatnonzero(~is_int)))
    for i, team in enumerate(teams["team_id"]):
        drift = rng.normal(0.0, 0.12, size=3).cumsum()
        for r, review in enumerate(REVIEWS):
            if review == "6m" and i == control_no_6m:
                continue  # one control team was not reviewed at 6 months
            gain = {
                "baseline": 0.0,
                "6m": TRUE_EFFECTS["fidelity_mean_item_gain_6m"],
                "12m": TRUE_EFFECTS["fidelity_mean_item_gain_12m"],
            }[review] * is_int[i]
            level = base_level[i] + 0.05 * r + gain + drift[r]
            latent = level + item_offset + rng.normal(0.0, 0.7, size=N_ITEMS)
            scores = np.clip(np.rint(latent), 1, 5).astype(int)
            row: dict[str, Any] = {
                "team_id": team,
                "review": review,
                "reviewed_on": (start + dt.timedelta(days=182 * r + int(rng.integers(0, 21))))
                .isoformat(),
                "scale_version": "core_crt_v2",
            }
            row.update({f"item_{k + 1:02d}": int(scores[k]) for k in range(N_ITEMS)})
            rows.append(row)
    fidelity = pd.DataFrame(rows)
    items = [f"item_{k + 1:02d}" for k in range(N_ITEMS)]
    fidelity[items] = fidelity[items].astype("Int64")
    # a few item scores the review team could not rate
    for _ in range(4):
        r = int(rng.integers(0, len(fidelity)))
        c = items[int(rng.integers(0, N_ITEMS))]
        fidelity.loc[r, c] = pd.NA
    return fidelity


def _team_period_effects(n: int, sd: float, rho: float, rng: np.random.Generator
                         ) -> np.ndarray:
    """Team effects in the two periods, shape ``(n, 2)``: normal with SD ``sd`` in each
    period and correlation ``rho`` between a team's pre and follow-up effects."""
    z = rng.normal(0.0, 1.0, size=(n, 2))
    return sd * np.column_stack([z[:, 0], rho * z[:, 0] + np.sqrt(1.0 - rho**2) * z[:, 1]])


def _admissions(teams: pd.DataFrame, rng: np.random.Generator, mean_users: float
                ) -> pd.DataFrame:
    log_or = np.log(TRUE_EFFECTS["admission_odds_ratio"])
    rho = TRUE_EFFECTS["admission_team_period_correlation"]
    team_u = _team_period_effects(len(teams), TRUE_EFFECTS["admission_team_sd"], rho, rng)
    team_r = _team_period_effects(len(teams), READMISSION_TEAM_SD, rho, rng)
    # team caseloads vary: gamma-distributed mean sizes (coefficient of variation ~0.45)
    size_mean = rng.gamma(5.0, mean_users / 5.0, size=len(teams))
    frames = []
    for i, (team, arm) in enumerate(zip(teams["team_id"], teams["arm"], strict=True)):
        for p, period in enumerate(PERIODS):
            n = max(8, int(rng.poisson(size_mean[i])))
            follow = period == "follow_up"
            eta = (-1.1 + team_u[i, p] - 0.1 * follow
                   + log_or * (follow and arm == "intervention"))
            age = rng.integers(18, 90, size=n)
            eta_i = eta + 0.01 * (age - 45)
            admitted = rng.binomial(1, 1.0 / (1.0 + np.exp(-eta_i)))
            stay = 1 + rng.negative_binomial(1.5, 1.5 / (1.5 + 20.0), size=n)
            bed_days = np.where(admitted == 1, stay, 0)
            readmitted = rng.binomial(1, 1.0 / (1.0 + np.exp(-(-1.8 + team_r[i, p]))), size=n)
            frames.append(
                pd.DataFrame(
                    {
                        "team_id": team,
                        "person_id": [f"{team}-{period[0].upper()}{k + 1:04d}" for k in range(n)],
                        "period": period,
                        "admitted": admitted.astype(int),
                        "bed_days": bed_days.astype(int),
                        "readmitted": readmitted.astype(int),
                        "age": age.astype(int),
                        "sex": rng.choice(["female", "male"], size=n),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def _service_use(admissions: pd.DataFrame) -> pd.DataFrame:
    grouped = admissions.groupby(["team_id", "period"], sort=False)
    return grouped.agg(
        n_users=("person_id", "size"),
        admissions=("admitted", "sum"),
        bed_days=("bed_days", "sum"),
        readmissions=("readmitted", "sum"),
    ).reset_index()


def simulate_trial(
    n_teams: int = 25,
    n_intervention: int = 15,
    n_strata: int = 8,
    *,
    mean_users: float = 60.0,
    respondents: int = 15,
    seed: int | None = None,
) -> SimulatedTrial:
    """Simulate a CORE-like cluster-randomised trial of Crisis Resolution Teams.

    Teams are spread over ``n_strata`` strata (NHS Trusts) and allocated within them.
    Fidelity is reviewed with the 39-item scale at baseline, 6 and 12 months; one
    control team misses its 6-month review and four item scores are missing. Service
    users are observed in a 6-month window before the programme (``pre``) and in
    months 7-12 (``follow_up``); team caseloads vary.

    The true effects are in :data:`TRUE_EFFECTS`: a latent mean-item fidelity gain of
    0.20 at 6 months and 0.35 at 12 months in intervention teams (about 7.8 and 13.7
    points on the 39-195 total, attenuated a little by rounding and the 1-5 bounds),
    a cluster-specific admission odds ratio of 0.70 at follow-up with a between-team
    SD of 0.40 on the log-odds scale, and no effect on readmission. As in service
    records, a team's admission (and readmission) effect drifts between the two
    periods: the pre and follow-up effects are bivariate normal with correlation 0.5,
    so the pre-period proportion predicts the follow-up one only in part and some
    between-team variation remains after adjusting for it.

    Questionnaires (drawn from their own random stream, spawned from the seed, so the
    other tables do not depend on them): the CSQ-8 of about ``respondents`` service
    users per team at discharge, sampled afresh at baseline and at follow-up (a
    repeated cross-section), skewed towards high satisfaction (median total about 28)
    with an ICC of the total of about 0.05 and a programme effect of about +1 point at
    follow-up; a few sampled service users did not respond and a few left items
    unanswered. The GHQ-12 (items 0-3) of 8-12 staff per team and wave, about half of
    baseline staff answering again at follow-up under the same ``staff_id``; the
    programme lowers distress a little. The effects on the totals are in
    :data:`TRUE_EFFECTS` (``csq8_total_gain``, ``ghq12_likert_gain``,
    ``ghq12_ghq_gain``).

    Parameters
    ----------
    n_teams, n_intervention, n_strata
        Number of teams, of intervention teams, and of strata.
    mean_users
        Mean number of service users per team and period.
    respondents
        Service users responding to the CSQ-8, about, per team and wave (at least 2).
    seed
        Seed for :func:`numpy.random.default_rng`.

    Returns
    -------
    SimulatedTrial
        ``teams``, ``fidelity``, ``admissions``, ``service_use``,
        ``user_questionnaires`` and ``staff_questionnaires`` tables and the ``truth``.

    Examples
    --------
    >>> trial = simulate_trial(seed=1)
    >>> trial.teams["arm"].value_counts().to_dict()
    {'intervention': 15, 'control': 10}
    >>> trial.fidelity.shape
    (74, 43)
    >>> sorted(trial.user_questionnaires["wave"].unique())
    ['baseline', 'follow_up']
    """
    if not 2 <= n_intervention <= n_teams - 2:
        raise InvalidParameterError(
            f"n_intervention must leave at least two teams in each arm; got {n_intervention} "
            f"of {n_teams}."
        )
    if not 1 <= n_strata <= n_teams:
        raise InvalidParameterError(f"n_strata must be between 1 and n_teams; got {n_strata}.")
    if mean_users <= 0:
        raise InvalidParameterError(f"mean_users must be positive; got {mean_users!r}.")
    if isinstance(respondents, bool) or not isinstance(respondents, int) or respondents < 2:
        raise InvalidParameterError(
            f"respondents must be a whole number of at least 2; got {respondents!r}.")
    rng = np.random.default_rng(seed)
    strata, arm = _allocate(n_teams, n_intervention, n_strata, rng)
    start = dt.date(2014, 3, 1)
    width = max(2, len(str(n_teams)))
    teams = pd.DataFrame(
        {
            "team_id": [f"T{k + 1:0{width}d}" for k in range(n_teams)],
            "arm": arm.astype(str),
            "stratum": [f"Trust {chr(ord('A') + s)}" if s < 26 else f"Trust {s + 1}"
                        for s in strata],
            "randomised_on": start.isoformat(),
        }
    )
    fidelity = _fidelity(teams, rng, start)
    admissions = _admissions(teams, rng, mean_users)
    # spawning leaves rng's own stream as it is: the tables above never change with the
    # questionnaires
    user_rng, staff_rng = rng.spawn(2)
    return SimulatedTrial(
        teams=teams,
        fidelity=fidelity,
        admissions=admissions,
        service_use=_service_use(admissions),
        truth={**TRUE_EFFECTS, "seed": seed},
        user_questionnaires=user_questionnaires(teams, user_rng, start,
                                                respondents=respondents),
        staff_questionnaires=staff_questionnaires(teams, staff_rng, start),
    )

"""One simulated trial from a :class:`TrialDesign`: the four tables of the data model.

The tables have the columns of ``data_schema/`` and pass :func:`crtstats.validate`, so
the plan's analyses run on them exactly as on real data:

* ``teams``: teams spread over the strata as evenly as possible, then allocated within
  each stratum, the intervention places shared out in proportion to the stratum sizes
  (remainders to strata drawn at random), as a stratified trial allocates;
* ``fidelity``: one row per team and review with the 39 item scores. The simulated
  quantity is the total (see :class:`FidelityDesign`); it is rounded, kept in 39-195,
  and spread over the items as evenly as it goes (every item ``total // 39``, and one
  more on ``total % 39`` items drawn at random), so the scorer returns exactly the
  simulated total. Item-level structure is not simulated: item and domain analyses of
  simulated reviews mean nothing;
* ``admissions``: one row per service user and period (``pre``, ``follow_up``), with
  ``admitted``, ``bed_days`` (a length of stay of ``1 +`` a negative binomial count of
  mean 20 and size 1.5 for an admitted user, 0 otherwise; no arm effect) and
  ``readmitted`` (with ``NULL_READMISSION`` when the design has none);
* ``service_use``: ``admissions`` aggregated per team and period.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crtstats.runner import NULL_READMISSION, BinaryDesign, FidelityDesign, TrialDesign

__all__ = ["SimulatedTables", "simulate_tables"]

N_ITEMS = 39
REVIEWS = ("baseline", "6m", "12m")
PERIODS = ("pre", "follow_up")
SCALE_VERSION = "core_crt_v2"
RANDOMISED_ON = "2014-03-01"
#: Length of stay of an admitted service user: 1 + NB(size, mean).
STAY_SIZE, STAY_MEAN = 1.5, 20.0


@dataclass(frozen=True)
class SimulatedTables:
    """The tables of one simulated trial (``admissions``/``service_use`` may be None)."""

    teams: pd.DataFrame
    fidelity: pd.DataFrame | None
    admissions: pd.DataFrame | None
    service_use: pd.DataFrame | None


def allocate(design: TrialDesign, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Stratum index and intervention indicator of each team, allocated within strata."""
    n, n_strata = design.n_teams, design.strata
    strata = np.sort(np.arange(n) % n_strata)
    sizes = np.bincount(strata, minlength=n_strata)
    share = sizes * design.intervention / n
    n_int = np.floor(share).astype(int)
    order = np.lexsort((rng.random(n_strata), -(share - n_int)))
    n_int[order[: design.intervention - int(n_int.sum())]] += 1
    treated = np.zeros(n, dtype=bool)
    for s in range(n_strata):
        members = np.flatnonzero(strata == s)
        treated[rng.permutation(members)[: n_int[s]]] = True
    return strata, treated


def cluster_sizes(design: TrialDesign, rng: np.random.Generator) -> np.ndarray:
    """Service users of each team per period."""
    if design.cluster_sizes is not None:
        return np.asarray(design.cluster_sizes, dtype=np.int64)
    n, mean, cv = design.n_teams, design.mean_cluster_size, design.cluster_size_cv
    if cv == 0:
        return np.full(n, max(1, round(mean)), dtype=np.int64)
    if design.cluster_size_law == "gamma":
        draws = rng.gamma(1.0 / cv**2, mean * cv**2, size=n)
    else:  # negative binomial with variance mean + mean^2 / k, cv^2 = 1/mean + 1/k
        k = 1.0 / (cv**2 - 1.0 / mean)
        draws = rng.negative_binomial(k, k / (k + mean), size=n).astype(float)
    return np.maximum(1, np.rint(draws)).astype(np.int64)


def _team_ids(n: int) -> list[str]:
    width = max(2, len(str(n)))
    return [f"T{k + 1:0{width}d}" for k in range(n)]


def _stratum_names(strata: np.ndarray) -> list[str]:
    return [f"Trust {chr(ord('A') + s)}" if s < 26 else f"Trust {s + 1}" for s in strata]


def _items_from_totals(totals: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Item scores (rows x 39) summing exactly to each whole-number total in 39-195."""
    base = totals // N_ITEMS
    extra = totals % N_ITEMS
    ranks = np.argsort(rng.random((len(totals), N_ITEMS)), axis=1)
    items: np.ndarray = base[:, None] + (ranks < extra[:, None])
    return items


def _fidelity(f: FidelityDesign, design: TrialDesign, ids: list[str], treated: np.ndarray,
              rng: np.random.Generator) -> pd.DataFrame:
    n = len(ids)
    team = rng.normal(0.0, math.sqrt(f.icc) * f.sd, size=n)
    noise = rng.normal(0.0, math.sqrt(1.0 - f.icc) * f.sd, size=(n, len(REVIEWS)))
    shift = np.array([0.0, *(f.trend[r] for r in REVIEWS[1:])])
    gain = np.array([0.0, *(f.effect[r] for r in REVIEWS[1:])])
    latent = f.mean + shift + team[:, None] + noise + treated[:, None] * gain
    totals = np.clip(np.rint(latent), 39, 195).astype(np.int64)
    keep = np.ones_like(totals, dtype=bool)
    if design.reviews_missing > 0:
        keep[:, 1:] = rng.random((n, len(REVIEWS) - 1)) >= design.reviews_missing
    rows, cols = np.nonzero(keep)
    items = _items_from_totals(totals[rows, cols], rng)
    frame = pd.DataFrame({
        "team_id": np.asarray(ids, dtype=object)[rows],
        "review": np.asarray(REVIEWS, dtype=object)[cols],
        "reviewed_on": [("2014-03-01", "2014-09-01", "2015-03-01")[c] for c in cols],
        "scale_version": SCALE_VERSION,
    })
    names = [f"item_{k + 1:02d}" for k in range(N_ITEMS)]
    scores = pd.DataFrame(items.astype(np.int64), columns=names)
    return pd.concat([frame, scores], axis=1)


def _team_effects(b: BinaryDesign, n: int, rng: np.random.Generator) -> np.ndarray:
    """Team effects (n x 2: pre, follow-up) with the design's variance and correlation."""
    tau, r = math.sqrt(b.team_variance), b.baseline_correlation
    z = rng.standard_normal((n, 2))
    return tau * np.column_stack([z[:, 0], r * z[:, 0] + math.sqrt(1.0 - r * r) * z[:, 1]])


def _binary(b: BinaryDesign, team: np.ndarray, follow: np.ndarray, treated: np.ndarray,
            rng: np.random.Generator) -> np.ndarray:
    """0/1 outcomes of service users (team index, follow-up flag, treated team flag)."""
    effects = _team_effects(b, int(treated.size), rng)
    pre = b.risk if b.pre_risk is None else b.pre_risk
    base = np.where(follow, math.log(b.risk / (1 - b.risk)), math.log(pre / (1 - pre)))
    eta = base + effects[team, follow.astype(int)] + (
        math.log(b.odds_ratio) * (follow & treated[team]))
    out: np.ndarray = (rng.random(team.size) < 1.0 / (1.0 + np.exp(-eta))).astype(np.int64)
    return out


def _admissions(design: TrialDesign, admitted_design: BinaryDesign, ids: list[str],
                treated: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    sizes = cluster_sizes(design, rng)
    n = len(ids)
    counts = np.column_stack([sizes, sizes])
    if design.attrition > 0:
        counts[:, 1] = rng.binomial(sizes, 1.0 - design.attrition)
    team = np.repeat(np.repeat(np.arange(n), 2), counts.ravel())
    follow = np.repeat(np.tile([False, True], n), counts.ravel())
    serial = np.concatenate([np.arange(c) for c in counts.ravel()]) + 1
    ids_arr = np.asarray(ids, dtype=object)
    person = [f"{t}-{'F' if f else 'P'}{k:04d}" for t, f, k in
              zip(ids_arr[team], follow, serial, strict=True)]
    admitted = _binary(admitted_design, team, follow, treated, rng)
    stay = 1 + rng.negative_binomial(STAY_SIZE, STAY_SIZE / (STAY_SIZE + STAY_MEAN),
                                     size=team.size)
    frame = pd.DataFrame({
        "team_id": ids_arr[team], "person_id": person,
        "period": np.where(follow, PERIODS[1], PERIODS[0]).astype(object),
        "admitted": admitted, "bed_days": np.where(admitted == 1, stay, 0).astype(np.int64),
    })
    readmitted = design.readmitted or NULL_READMISSION
    frame["readmitted"] = _binary(readmitted, team, follow, treated, rng)
    return frame


def _service_use(admissions: pd.DataFrame) -> pd.DataFrame:
    spec = {"n_users": ("person_id", "size"), "admissions": ("admitted", "sum"),
            "bed_days": ("bed_days", "sum")}
    if "readmitted" in admissions.columns:
        spec["readmissions"] = ("readmitted", "sum")
    grouped = admissions.groupby(["team_id", "period"], sort=False)
    return grouped.agg(**spec).reset_index()


def simulate_tables(design: TrialDesign, rng: np.random.Generator) -> SimulatedTables:
    """Simulate one trial of ``design`` with the random generator ``rng``.

    Parameters
    ----------
    design
        The trial design.
    rng
        The generator (each simulated trial has its own, spawned from the plan's seed).

    Returns
    -------
    SimulatedTables
        ``teams``, and ``fidelity`` when the design has fidelity, ``admissions`` and
        ``service_use`` when it has ``admitted``.

    Examples
    --------
    >>> import numpy as np
    >>> t = simulate_tables(TrialDesign(strata=8), np.random.default_rng(1))
    >>> t.teams["arm"].value_counts().to_dict(), t.fidelity.shape
    ({'intervention': 15, 'control': 10}, (75, 43))
    """
    strata, treated = allocate(design, rng)
    ids = _team_ids(design.n_teams)
    teams = pd.DataFrame({
        "team_id": ids, "arm": np.where(treated, "intervention", "control").astype(object),
        "stratum": _stratum_names(strata), "randomised_on": RANDOMISED_ON,
    })
    fidelity = (None if design.fidelity is None
                else _fidelity(design.fidelity, design, ids, treated, rng))
    admissions = (None if design.admitted is None
                  else _admissions(design, design.admitted, ids, treated, rng))
    return SimulatedTables(
        teams=teams, fidelity=fidelity, admissions=admissions,
        service_use=None if admissions is None else _service_use(admissions),
    )

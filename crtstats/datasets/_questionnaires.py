"""Simulated questionnaires of a CORE-like trial: service users' CSQ-8, staff GHQ-12.

Each item is a latent normal response rounded to the nearest score and clipped to the
item's range. The latent response of person ``i`` in team ``j`` at wave ``w`` to item
``k`` is ``level + offset_k + gain * intervention * follow_up + u_jw + p_i + e_ik``:
team effects ``u_jw`` (correlated across the two waves, as a team keeps much of its
character), person effects ``p_i`` and item noise ``e_ik``, all normal. Service users
are sampled afresh at each wave (repeated cross-section); about half the staff who
answered at baseline answer again at follow-up under the same ``staff_id`` (their
person effects correlated), the others are new.

Because the latent effects enter through the same rounding and clipping, the expected
score of each item has a closed form, ``lo + sum_c Phi((m - c) / s)`` over the cut
points ``c = lo + 0.5, ..., hi - 0.5``, with ``m`` the latent mean and ``s`` the
latent SD; :data:`QUESTIONNAIRE_EFFECTS` records the effects on the totals this gives.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["QUESTIONNAIRE_EFFECTS", "staff_questionnaires", "user_questionnaires"]

WAVES = ("baseline", "follow_up")


@dataclass(frozen=True)
class _Instrument:
    """The latent model of one simulated instrument (see the module docstring)."""

    key: str
    low: int
    high: int
    level: float
    offsets: tuple[float, ...]
    team_sd: float
    person_sd: float
    item_sd: float
    gain: float  # latent item-score effect of the programme at follow-up
    wave_correlation: float = 0.7  # of a team's effects at baseline and follow-up

    @property
    def columns(self) -> list[str]:
        return [f"{self.key}_{k + 1:02d}" for k in range(len(self.offsets))]

    @property
    def latent_sd(self) -> float:
        return math.sqrt(self.team_sd**2 + self.person_sd**2 + self.item_sd**2)

    def expected_total(self, shift: float, *, at_least: int | None = None) -> float:
        """Expected total over teams and people at latent shift ``shift``; with
        ``at_least``, the expected count of items scored ``at_least`` or more."""
        def phi(x: float) -> float:
            return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))

        cuts = (np.arange(self.low, self.high) + 0.5 if at_least is None
                else np.array([at_least - 0.5]))
        base = self.low if at_least is None else 0
        return float(sum(base + sum(phi((self.level + o + shift - c) / self.latent_sd)
                                    for c in cuts) for o in self.offsets))


# CSQ-8: skewed towards high satisfaction (median total 28, as in the CORE trial), an
# ICC of the total of about 0.05, and a programme effect of about +1 point on the total.
_CSQ8 = _Instrument(key="csq8", low=1, high=4, level=3.5,
                    offsets=(0.10, -0.10, 0.05, 0.15, -0.05, 0.00, -0.15, 0.00),
                    team_sd=0.15, person_sd=0.55, item_sd=0.55, gain=0.18)
# GHQ-12 (0-3 per item, higher = more distress): Likert total about 11, about 30% cases
# at a GHQ score of 4 or more; the programme lowers distress a little.
_GHQ12 = _Instrument(key="ghq12", low=0, high=3, level=0.9,
                     offsets=(0.10, -0.10, 0.15, -0.05, 0.00, 0.20, -0.15, 0.05, 0.10,
                              -0.20, -0.10, 0.00),
                     team_sd=0.11, person_sd=0.45, item_sd=0.60, gain=-0.15)
#: Correlation of a linked staff member's person effects at baseline and follow-up.
STAFF_PERSON_CORRELATION = 0.6
#: Share of baseline staff who answer again at follow-up under the same staff_id.
STAFF_LINK_SHARE = 0.5

#: The questionnaire effects built into the simulation, intervention minus control at
#: follow-up, as expected over teams and people (closed forms; see the module docstring).
QUESTIONNAIRE_EFFECTS: Mapping[str, float] = {
    "csq8_latent_item_gain": _CSQ8.gain,
    "csq8_total_gain": _CSQ8.expected_total(_CSQ8.gain) - _CSQ8.expected_total(0.0),
    "csq8_team_sd": _CSQ8.team_sd,
    "ghq12_latent_item_gain": _GHQ12.gain,
    "ghq12_likert_gain": _GHQ12.expected_total(_GHQ12.gain) - _GHQ12.expected_total(0.0),
    "ghq12_ghq_gain": (_GHQ12.expected_total(_GHQ12.gain, at_least=2)
                       - _GHQ12.expected_total(0.0, at_least=2)),
    "ghq12_team_sd": _GHQ12.team_sd,
    "staff_link_share": STAFF_LINK_SHARE,
}


def _team_wave_effects(n: int, spec: _Instrument, rng: np.random.Generator) -> np.ndarray:
    z = rng.normal(0.0, 1.0, size=(n, 2))
    rho = spec.wave_correlation
    return spec.team_sd * np.column_stack([z[:, 0], rho * z[:, 0]
                                           + math.sqrt(1.0 - rho**2) * z[:, 1]])


def _items(spec: _Instrument, shift: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Item scores of people whose latent mean (less the level and offsets) is ``shift``."""
    noise = rng.normal(0.0, spec.item_sd, size=(len(shift), len(spec.offsets)))
    latent = spec.level + np.asarray(spec.offsets) + shift[:, None] + noise
    scores: np.ndarray = np.clip(np.rint(latent), spec.low, spec.high).astype(int)
    return scores


def _dates(wave: str, n: int, start: dt.date, rng: np.random.Generator) -> list[str]:
    """Baseline in the programme's first 3 months, follow-up in months 10-12."""
    first = start + dt.timedelta(days=0 if wave == "baseline" else 274)
    return [(first + dt.timedelta(days=int(d))).isoformat() for d in rng.integers(0, 91, n)]


def _frame(spec: _Instrument, id_column: str, parts: Sequence[_Part]) -> pd.DataFrame:
    """One table from the parts simulated per team and wave (built once, for speed)."""
    responded = np.concatenate([p.responded for p in parts])
    items = np.concatenate([p.items for p in parts])
    dates = np.concatenate([p.dates for p in parts]).astype(object)
    dates[~responded] = None
    frame = pd.DataFrame({
        "team_id": np.concatenate([[p.team] * len(p.ids) for p in parts]).astype(object),
        id_column: np.concatenate([p.ids for p in parts]).astype(object),
        "wave": np.concatenate([[p.wave] * len(p.ids) for p in parts]).astype(object),
        "collected_on": dates,
        "responded": responded,
    })
    blank = np.broadcast_to(~responded[:, None], items.shape)
    for k, column in enumerate(spec.columns):
        frame[column] = pd.arrays.IntegerArray(items[:, k].astype("int64"), blank[:, k].copy())
    return frame


@dataclass(frozen=True)
class _Part:
    """The people of one team and wave."""

    team: str
    wave: str
    ids: list[str]
    dates: list[str]
    items: np.ndarray
    responded: np.ndarray


def _blank_items(frame: pd.DataFrame, columns: Sequence[str], counts: Sequence[int],
                 rng: np.random.Generator) -> pd.DataFrame:
    """Leave ``counts[r]`` items unanswered in each of ``len(counts)`` responders."""
    answered = np.flatnonzero(frame["responded"].to_numpy())
    rows = rng.choice(answered, size=min(len(counts), len(answered)), replace=False)
    for row, count in zip(rows, counts, strict=False):
        for column in rng.choice(list(columns), size=count, replace=False):
            frame.loc[frame.index[row], column] = pd.NA
    return frame


def user_questionnaires(teams: pd.DataFrame, rng: np.random.Generator, start: dt.date, *,
                        respondents: int) -> pd.DataFrame:
    """CSQ-8 of service users at discharge, sampled afresh at baseline and follow-up.

    About ``respondents`` answer per team and wave: ``respondents`` to
    ``respondents + 2`` are sampled, each not responding with probability 0.06; seven
    responders leave items unanswered (six one item, one two items).
    """
    spec = _CSQ8
    is_int = (teams["arm"] == "intervention").to_numpy()
    team_u = _team_wave_effects(len(teams), spec, rng)
    parts = []
    for w, wave in enumerate(WAVES):
        for i, team in enumerate(teams["team_id"]):
            n = respondents + int(rng.integers(0, 3))
            shift = (team_u[i, w] + spec.gain * (is_int[i] and w == 1)
                     + rng.normal(0.0, spec.person_sd, size=n))
            ids = [f"{team}-{'BF'[w]}U{k + 1:03d}" for k in range(n)]
            dates = _dates(wave, n, start, rng)
            parts.append(_Part(team, wave, ids, dates, _items(spec, shift, rng),
                               rng.random(n) >= 0.06))
    out = _frame(spec, "respondent_id", parts)
    return _blank_items(out, spec.columns, [1, 1, 1, 1, 1, 1, 2], rng)


def _staff_ids(team: str, n_base: int, n_follow: int, rng: np.random.Generator
               ) -> tuple[list[str], list[str], np.ndarray]:
    """Baseline and follow-up staff ids of one team, and which baseline staff return."""
    base = [f"{team}-S{k + 1:03d}" for k in range(n_base)]
    n_linked = min(int(rng.binomial(n_base, STAFF_LINK_SHARE)), n_follow)
    linked = np.sort(rng.choice(n_base, size=n_linked, replace=False))
    fresh = [f"{team}-S{n_base + k + 1:03d}" for k in range(n_follow - n_linked)]
    return base, [base[k] for k in linked] + fresh, linked


def staff_questionnaires(teams: pd.DataFrame, rng: np.random.Generator, start: dt.date
                         ) -> pd.DataFrame:
    """GHQ-12 of 8-12 staff per team and wave; about half of baseline staff answer again.

    Each staff member does not respond with probability 0.05; three responders leave
    one item unanswered.
    """
    spec = _GHQ12
    is_int = (teams["arm"] == "intervention").to_numpy()
    team_u = _team_wave_effects(len(teams), spec, rng)
    rho = STAFF_PERSON_CORRELATION
    parts: list[list[_Part]] = [[], []]
    for i, team in enumerate(teams["team_id"]):
        n_base, n_follow = (int(v) for v in rng.integers(8, 13, size=2))
        base_ids, follow_ids, linked = _staff_ids(team, n_base, n_follow, rng)
        person_b = rng.normal(0.0, spec.person_sd, size=n_base)
        person_f = rng.normal(0.0, spec.person_sd, size=n_follow)
        person_f[: len(linked)] = (rho * person_b[linked]
                                   + math.sqrt(1.0 - rho**2) * person_f[: len(linked)])
        for w, (ids, person) in enumerate(((base_ids, person_b), (follow_ids, person_f))):
            wave = WAVES[w]
            shift = team_u[i, w] + spec.gain * (is_int[i] and w == 1) + person
            dates = _dates(wave, len(ids), start, rng)
            items = _items(spec, shift, rng)
            order = np.argsort(ids, kind="stable")  # rows by staff_id within a team
            parts[w].append(_Part(team, wave, [ids[k] for k in order],
                                  [dates[k] for k in order], items[order],
                                  (rng.random(len(ids)) >= 0.05)[order]))
    # one row per team, wave and staff member, the baseline wave first
    out = _frame(spec, "staff_id", parts[0] + parts[1])
    return _blank_items(out, spec.columns, [1, 1, 1], rng)

"""Properties of questionnaire scoring: totals stay in their scoring's range whatever the
items, a prorated total lies between the totals of the lowest and highest completions,
and relabelling ids changes nothing."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crtstats.exceptions import ProrationWarning
from crtstats.scales import load_instrument, score_questionnaire

GHQ = load_instrument("ghq12")


@st.composite
def answers(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(min_value=1, max_value=8))
    cells = draw(st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=n * 12,
                          max_size=n * 12))
    block = pd.DataFrame(np.array(cells, dtype=object).reshape(n, 12),
                         columns=list(GHQ.columns)).astype("Int64")
    ids = pd.DataFrame({"team_id": ["T1"] * n, "staff_id": [f"s{i}" for i in range(n)],
                        "wave": ["baseline"] * n})
    return pd.concat([ids, block], axis=1)


@given(answers(), st.sampled_from(GHQ.scoring_names), st.integers(0, 11))
def test_totals_stay_in_range(table: pd.DataFrame, scoring: str, max_missing: int) -> None:
    with pytest.warns(ProrationWarning) if _prorates(table, max_missing) else nullcontext():
        scores = score_questionnaire(table, GHQ, scoring=scoring, max_missing=max_missing,
                                     prorate=True)
    chosen = GHQ.scoring(scoring)
    total = scores["total"].dropna()
    assert ((total >= chosen.total_min) & (total <= chosen.total_max)).all()
    n_missing = 12 - scores["n_items_scored"]
    has_total = scores["total"].notna()
    assert (has_total == ((n_missing <= max_missing) & (n_missing < 12))).all()
    assert (scores["prorated"] == (has_total & (n_missing > 0))).all()
    relabelled = table.assign(staff_id=[f"x{i}" for i in range(len(table))])
    with pytest.warns(ProrationWarning) if _prorates(table, max_missing) else nullcontext():
        again = score_questionnaire(relabelled, GHQ, scoring=scoring,
                                    max_missing=max_missing, prorate=True)
    pd.testing.assert_series_equal(again["total"], scores["total"])


def _prorates(table: pd.DataFrame, max_missing: int) -> bool:
    missing = table[list(GHQ.columns)].isna().sum(axis=1)
    return bool(((missing > 0) & (missing <= max_missing) & (missing < 12)).any())


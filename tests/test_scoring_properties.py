"""Property tests of fidelity scoring (hypothesis; profile set in conftest.py)."""

from __future__ import annotations

import warnings
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

import crtstats
from crtstats.exceptions import ProrationWarning, SchemaValidationError

ITEMS = [f"item_{i:02d}" for i in range(1, 40)]


def as_table(scores: np.ndarray) -> pd.DataFrame:
    """A wide fidelity table from a reviews x 39 float array (NaN = missing)."""
    data = pd.DataFrame(scores, columns=ITEMS).astype("Int64")
    data.insert(0, "review", "baseline")
    data.insert(0, "team_id", [f"T{i:03d}" for i in range(len(data))])
    return data


def score(data: pd.DataFrame, max_missing: int = 0,
          scale: str | PathLike[str] = "core_crt_v2") -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ProrationWarning)  # proration is asserted on below
        return crtstats.score_fidelity(data, max_missing=max_missing, scale=scale)


@st.composite
def complete_reviews(draw: st.DrawFn) -> np.ndarray:
    """1 to 12 complete reviews; item scores from a seeded generator (drawing 39 x n
    elements one by one through hypothesis is too slow for the suite's time budget),
    with all-1 and all-5 rows mixed in so the range ends are always exercised."""
    n = draw(st.integers(1, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scores = rng.integers(1, 6, size=(n, 39)).astype(float)
    extremes = draw(st.lists(st.sampled_from([1.0, 5.0, None]), min_size=n, max_size=n))
    for row, value in enumerate(extremes):
        if value is not None:
            scores[row] = value
    return scores


@st.composite
def reviews_with_gaps(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    """Reviews with some items missing (rate 0 to 30%), and a max_missing to score them."""
    scores = draw(complete_reviews())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scores[rng.random(scores.shape) < draw(st.floats(0.0, 0.3))] = np.nan
    return scores, draw(st.integers(0, 38))


@given(complete_reviews())
def test_complete_totals_are_item_sums_within_range(scores: np.ndarray) -> None:
    result = score(as_table(scores))
    np.testing.assert_array_equal(result["total"], scores.sum(axis=1))
    assert result["total"].between(39, 195).all()
    assert not result["prorated"].any() and (result["n_items_scored"] == 39).all()
    np.testing.assert_allclose(result["mean_item"], scores.mean(axis=1), rtol=1e-15)


@given(reviews_with_gaps())
def test_any_total_stays_in_range_and_proration_is_flagged(case: tuple[np.ndarray, int]) -> None:
    scores, max_missing = case
    result = score(as_table(scores), max_missing=max_missing)
    n_missing = np.isnan(scores).sum(axis=1)
    total = result["total"].to_numpy()
    has_total = ~np.isnan(total)
    assert ((39 <= total[has_total]) & (total[has_total] <= 195)).all()
    np.testing.assert_array_equal(has_total, n_missing <= max_missing)
    np.testing.assert_array_equal(result["prorated"], has_total & (n_missing > 0))
    np.testing.assert_array_equal(result["band"].isna(), ~has_total)
    np.testing.assert_allclose(total[has_total],
                               np.nanmean(scores[has_total], axis=1) * 39, rtol=1e-13)


@given(st.integers(39, 195))
def test_band_boundaries_are_exact(total: int) -> None:
    # a complete review with exactly this total: spread total - 39 points over the items
    extra = total - 39
    scores = np.ones((1, 39)) + np.minimum(4, np.maximum(0, extra - 4 * np.arange(39)))
    assert scores.sum() == total
    band = score(as_table(scores))["band"].iloc[0]
    assert band == ("low" if total < 117 else "moderate" if total < 156 else "high")


def test_band_boundary_pairs() -> None:
    totals = [116, 117, 155, 156]
    scores = np.ones((4, 39))
    for row, total in enumerate(totals):
        extra = total - 39
        scores[row] += np.minimum(4, np.maximum(0, extra - 4 * np.arange(39)))
    result = score(as_table(scores))
    assert result["total"].tolist() == [116.0, 117.0, 155.0, 156.0]
    assert result["band"].tolist() == ["low", "moderate", "moderate", "high"]


@given(reviews_with_gaps(), st.randoms(use_true_random=False))
def test_permuting_rows_permutes_the_output(case: tuple[np.ndarray, int], rnd: object) -> None:
    scores, max_missing = case
    table = as_table(scores)
    order = list(range(len(table)))
    rnd.shuffle(order)  # type: ignore[attr-defined]
    shuffled = table.iloc[order]
    pd.testing.assert_frame_equal(score(shuffled, max_missing),
                                  score(table, max_missing).iloc[order])


DEMO_KEY = Path(__file__).resolve().parent / "scales" / "demo_scale_v1.yaml"
_CELLS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 8), st.floats(allow_nan=True),
    st.text(max_size=4), st.sampled_from(["3", " 2", "4.0", "1e0", "NA", "", "inf"]),
)


@given(st.lists(st.lists(_CELLS, min_size=6, max_size=6), min_size=1, max_size=5),
       st.integers(0, 5))
def test_scoring_any_cells_raises_only_validation_errors(rows: list[list[object]],
                                                         max_missing: int) -> None:
    data = pd.DataFrame(rows, columns=[f"q{i}" for i in range(1, 7)], dtype=object)
    data.insert(0, "review", "pre")
    data.insert(0, "team_id", [f"T{i}" for i in range(len(data))])
    try:
        result = score(data.copy(), max_missing=max_missing, scale=DEMO_KEY)
    except SchemaValidationError as err:
        cases = err.failure_cases
        assert len(cases) > 0 and cases["row"].notna().all()
        assert set(cases["column"]) <= set(data.columns)
        return
    total = result["total"].dropna()
    assert total.between(0, 24).all()

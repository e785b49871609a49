"""Cronbach's alpha and rater ICCs against R's psych (tests/reference/psych.R).

Tolerances: point estimates (alpha, standardised alpha, item statistics, ICCs, mean
squares, F) agree to 1e-8 absolute as the issue requires; both sides compute the same
closed forms in double precision, so the true differences are ~1e-13. Confidence limits
use F quantiles (scipy vs R's qf), also held to 1e-8. p-values can be as small as 1e-18,
so they are compared relatively (rtol 1e-8). Degrees of freedom are exact.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import crtstats
from crtstats.exceptions import InvalidParameterError, ModelSpecificationError

REFERENCE = Path(__file__).resolve().parent / "reference"
DATA = REFERENCE / "data"
POINT = 1e-8


@pytest.fixture(scope="module")
def ref() -> dict[str, Any]:
    with (REFERENCE / "psych.json").open() as fh:
        loaded: dict[str, Any] = json.load(fh)
    return loaded


# ---- Cronbach's alpha ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "csv", "missing"),
    [
        ("alpha_complete", "psych_alpha_items.csv", "listwise"),
        ("alpha_complete", "psych_alpha_items.csv", "pairwise"),
        ("alpha_pairwise", "psych_alpha_items_missing.csv", "pairwise"),
        ("alpha_listwise", "psych_alpha_items_missing.csv", "listwise"),
    ],
)
def test_alpha_matches_psych(ref: dict[str, Any], case: str, csv: str, missing: str) -> None:
    expected = ref[case]
    items = pd.read_csv(DATA / csv)
    result = crtstats.cronbach_alpha(items, missing=missing)  # type: ignore[arg-type]
    assert result.alpha == pytest.approx(expected["raw_alpha"], abs=POINT)
    assert result.std_alpha == pytest.approx(expected["std_alpha"], abs=POINT)
    assert result.average_r == pytest.approx(expected["average_r"], abs=POINT)
    assert result.ci_lower == pytest.approx(expected["feldt_lower"], abs=POINT)
    assert result.ci_upper == pytest.approx(expected["feldt_upper"], abs=POINT)
    assert result.n == expected["n_rows"]
    stats = result.item_stats
    assert stats["item"].tolist() == expected["items"]
    assert stats["n"].tolist() == expected["item_n"]
    for ours, theirs in [("mean", "item_mean"), ("sd", "item_sd"), ("r_drop", "r_drop"),
                         ("alpha_if_deleted", "alpha_if_deleted"),
                         ("std_alpha_if_deleted", "std_alpha_if_deleted")]:
        np.testing.assert_allclose(stats[ours], expected[theirs], rtol=0, atol=POINT,
                                   err_msg=ours)


def test_alpha_listwise_reports_what_it_left_out(ref: dict[str, Any]) -> None:
    items = pd.read_csv(DATA / "psych_alpha_items_missing.csv")
    result = crtstats.cronbach_alpha(items)
    assert result.missing == "listwise"
    assert result.n == ref["alpha_listwise"]["n_rows"] == 41
    assert result.n_incomplete == len(items) - 41
    frame = result.to_frame()
    assert frame.loc[0, "n_incomplete"] == 19 and frame.loc[0, "alpha"] == result.alpha


def test_feldt_interval_at_another_level(ref: dict[str, Any]) -> None:
    items = pd.read_csv(DATA / "psych_alpha_items.csv")
    result = crtstats.cronbach_alpha(items, level=0.90)
    assert result.ci_lower == pytest.approx(ref["alpha_feldt_90"]["lower.ci"], abs=POINT)
    assert result.ci_upper == pytest.approx(ref["alpha_feldt_90"]["upper.ci"], abs=POINT)


def test_alpha_result_is_frozen() -> None:
    result = crtstats.cronbach_alpha(pd.read_csv(DATA / "psych_alpha_items.csv"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.alpha = 1.0  # type: ignore[misc]


def test_alpha_of_two_items_has_no_alpha_if_deleted() -> None:
    items = pd.DataFrame({"a": [1, 2, 3, 4, 5], "b": [2, 2, 3, 5, 4]})
    result = crtstats.cronbach_alpha(items)
    # two items: alpha = 2 * (1 - (var a + var b) / var(a + b))
    var = items.var()
    assert result.alpha == pytest.approx(2 * (1 - var.sum() / items.sum(axis=1).var()),
                                         rel=1e-14)
    assert np.isnan(result.alpha_if_deleted).all()


def test_alpha_bad_input_is_named() -> None:
    items = pd.read_csv(DATA / "psych_alpha_items.csv")
    with pytest.raises(ModelSpecificationError, match=r"\['item_03'\] have no variance"):
        crtstats.cronbach_alpha(items.assign(item_03=4))
    with pytest.raises(InvalidParameterError, match=r"\['team'\] are not"):
        crtstats.cronbach_alpha(items.assign(team="T1"))
    with pytest.raises(InvalidParameterError, match="at least 2 items"):
        crtstats.cronbach_alpha(items[["item_01"]])
    with pytest.raises(InvalidParameterError, match="missing must be one of"):
        crtstats.cronbach_alpha(items, missing="mean")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="level must be between 0 and 1"):
        crtstats.cronbach_alpha(items, level=95)
    with pytest.raises(ModelSpecificationError, match="at least 3 rows"):
        crtstats.cronbach_alpha(items.iloc[:2])


@given(st.integers(0, 2**32 - 1), st.integers(2, 8), st.integers(5, 40))
def test_alpha_interval_contains_estimate_and_invariant_to_row_order(
    seed: int, k: int, n: int
) -> None:
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 1))
    items = pd.DataFrame(latent + rng.normal(size=(n, k)), columns=[f"i{j}" for j in range(k)])
    result = crtstats.cronbach_alpha(items)
    assert result.ci_lower <= result.alpha <= result.ci_upper
    shuffled = crtstats.cronbach_alpha(items.sample(frac=1.0, random_state=seed % 1000))
    assert shuffled.alpha == pytest.approx(result.alpha, abs=1e-12)
    np.testing.assert_allclose(shuffled.r_drop, result.r_drop, atol=1e-12)


# ---- rater ICCs ----------------------------------------------------------------------------


def icc_frame(csv: str, **options: Any) -> tuple[crtstats.scales.IccResult, pd.DataFrame]:
    result = crtstats.rater_icc(pd.read_csv(DATA / csv), target="target", rater="rater",
                                rating="rating", **options)
    return result, result.to_frame()


@pytest.mark.parametrize(
    ("case", "csv", "missing"),
    [
        ("icc_shrout_fleiss", "psych_icc_shrout_fleiss.csv", "error"),
        ("icc_raters", "psych_icc_raters.csv", "error"),
        ("icc_raters_missing", "psych_icc_raters_missing.csv", "drop_targets"),
    ],
)
def test_icc_matches_psych(ref: dict[str, Any], case: str, csv: str, missing: str) -> None:
    expected = ref[case]
    result, frame = icc_frame(csv, missing=missing)
    assert frame["type"].tolist() == expected["type"]
    np.testing.assert_allclose(frame["icc"], expected["icc"], rtol=0, atol=POINT)
    np.testing.assert_allclose(frame["f"], expected["F"], rtol=0, atol=POINT)
    np.testing.assert_array_equal(frame["df1"], expected["df1"])
    np.testing.assert_array_equal(frame["df2"], expected["df2"])
    np.testing.assert_allclose(frame["pvalue"], expected["p"], rtol=1e-8, atol=0)
    np.testing.assert_allclose(frame["ci_lower"], expected["lower"], rtol=0, atol=POINT)
    np.testing.assert_allclose(frame["ci_upper"], expected["upper"], rtol=0, atol=POINT)
    assert (result.n_targets, result.n_raters) == (expected["n_targets"],
                                                   expected["n_raters"])
    for ours, theirs in [("ms_between", "ms_between"), ("ms_within", "ms_within"),
                         ("ms_raters", "ms_raters"), ("ms_error", "ms_error")]:
        assert getattr(result, ours) == pytest.approx(expected[theirs], abs=POINT), ours


def test_shrout_fleiss_published_values() -> None:
    """Shrout and Fleiss (1979), table 4, to the two decimals printed there."""
    result, _ = icc_frame("psych_icc_shrout_fleiss.csv")
    published = {"ICC1": 0.17, "ICC2": 0.29, "ICC3": 0.71, "ICC1k": 0.44, "ICC2k": 0.62,
                 "ICC3k": 0.91}
    for name, value in published.items():
        assert round(result[name].icc, 2) == value


def test_missing_ratings_are_refused_or_dropped_visibly() -> None:
    with pytest.raises(ModelSpecificationError, match=r"2 target\(s\).*'T04', 'T17'"):
        icc_frame("psych_icc_raters_missing.csv")
    result, _ = icc_frame("psych_icc_raters_missing.csv", missing="drop_targets")
    assert result.dropped_targets == ("T04", "T17") and result.n_targets == 23


def test_icc_bad_input_is_named() -> None:
    data = pd.read_csv(DATA / "psych_icc_shrout_fleiss.csv")
    with pytest.raises(InvalidParameterError, match="more than once"):
        crtstats.rater_icc(pd.concat([data, data.iloc[:1]]), target="target", rater="rater",
                           rating="rating")
    with pytest.raises(crtstats.MissingColumnError, match=r"no column\(s\) \['score'\]"):
        crtstats.rater_icc(data, target="target", rater="rater", rating="score")
    with pytest.raises(InvalidParameterError, match="must be numeric"):
        crtstats.rater_icc(data.astype({"rating": str}), target="target", rater="rater",
                           rating="rating")
    with pytest.raises(ModelSpecificationError, match="all ratings are equal"):
        crtstats.rater_icc(data.assign(rating=3), target="target", rater="rater",
                           rating="rating")
    with pytest.raises(ModelSpecificationError, match="at least 2"):
        crtstats.rater_icc(data[data["rater"] == "J1"], target="target", rater="rater",
                           rating="rating")
    with pytest.raises(KeyError, match="not an ICC form"):
        crtstats.rater_icc(data, target="target", rater="rater", rating="rating")["ICC4"]


@given(st.integers(0, 2**32 - 1), st.integers(2, 10), st.integers(2, 5))
def test_icc_invariant_to_row_order_and_relabelling(seed: int, n: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    ratings = rng.normal(size=(n, 1)) + rng.normal(size=(n, k))
    data = pd.DataFrame({"target": np.repeat([f"t{i}" for i in range(n)], k),
                         "rater": np.tile([f"r{j}" for j in range(k)], n),
                         "rating": ratings.ravel()})
    base = crtstats.rater_icc(data, target="target", rater="rater", rating="rating")
    moved = data.sample(frac=1.0, random_state=seed % 1000).assign(
        target=lambda d: "x" + d["target"], rater=lambda d: d["rater"].str.upper())
    other = crtstats.rater_icc(moved, target="target", rater="rater", rating="rating")
    np.testing.assert_allclose(other.to_frame()["icc"], base.to_frame()["icc"], atol=1e-12)
    # the exact F-based intervals contain their estimate; the approximate ICC2/ICC2k
    # intervals need not with very few targets (psych gives the same numbers)
    frame = base.to_frame().set_index("type").loc[["ICC1", "ICC3", "ICC1k", "ICC3k"]]
    assert (frame["ci_lower"] <= frame["icc"] + 1e-12).all()
    assert (frame["icc"] <= frame["ci_upper"] + 1e-12).all()

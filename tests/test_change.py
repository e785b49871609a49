"""Per-team change in fidelity between two reviews."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import crtstats
from crtstats import datasets
from crtstats.exceptions import InvalidParameterError

ITEMS = [f"item_{i:02d}" for i in range(1, 40)]
DEMO_KEY = Path(__file__).resolve().parent / "scales" / "demo_scale_v1.yaml"


def table(rows: list[tuple[str, str, list[float | None] | float]]) -> pd.DataFrame:
    records = []
    for team, review, scores in rows:
        values = scores if isinstance(scores, list) else [scores] * 39
        records.append({"team_id": team, "review": review, **dict(zip(ITEMS, values,
                                                                      strict=True))})
    data = pd.DataFrame(records)
    data[ITEMS] = data[ITEMS].astype("Int64")
    return data


def test_change_on_the_example_matches_a_manual_merge() -> None:
    scores = crtstats.score_fidelity(datasets.load_example().fidelity)
    change = crtstats.fidelity_change(scores, from_review="baseline", to_review="12m")
    assert change["team_id"].tolist() == pd.unique(scores["team_id"]).tolist()
    before = scores[scores["review"] == "baseline"].set_index("team_id")
    after = scores[scores["review"] == "12m"].set_index("team_id")
    expected = (after["total"] - before["total"]).reindex(change["team_id"]).to_numpy()
    np.testing.assert_array_equal(change["total_change"].to_numpy(), expected)
    expected = (after["location_timing_mean"] - before["location_timing_mean"]).reindex(
        change["team_id"]).to_numpy()
    np.testing.assert_array_equal(change["location_timing_mean_change"].to_numpy(), expected)
    complete = change["status"] == "complete"
    assert change.loc[complete, "total_change"].notna().all()
    assert change.loc[~complete, "total_change"].isna().all()


def test_teams_lacking_a_review_are_listed_not_dropped() -> None:
    data = table([
        ("A", "baseline", 3), ("A", "12m", 4),        # 117 -> 156: moderate -> high
        ("B", "baseline", 4),                          # no 12-month review
        ("C", "12m", 2), ("C", "6m", 3),               # no baseline
        ("D", "6m", 3),                                # neither
        ("E", "baseline", 2), ("E", "12m", [None] + [3] * 38),  # 12-month total missing
    ])
    change = crtstats.fidelity_change(crtstats.score_fidelity(data))
    assert change["team_id"].tolist() == ["A", "B", "C", "D", "E"]
    assert change["status"].tolist() == [
        "complete", "missing_to_review", "missing_from_review", "missing_both_reviews",
        "incomplete_total"]
    assert change["total_change"].tolist()[0] == 39.0
    assert change["total_change"].iloc[1:].isna().all()
    assert change["band_from"].tolist()[:2] == ["moderate", "high"]
    assert change["band_to"].tolist()[0] == "high"
    assert change["band_step"].tolist() == [1, pd.NA, pd.NA, pd.NA, pd.NA]
    assert change["band_step"].dtype == "Int64"
    # team E: the complete domains of the incomplete 12-month review still give changes
    e = change.iloc[4]
    assert np.isnan(e["referrals_access_sum_change"])
    assert e["content_delivery_sum_change"] == 16.0 and e["location_timing_mean_change"] == 1.0
    assert (change["from_review"] == "baseline").all() and (change["to_review"] == "12m").all()


def test_band_step_counts_bands_moved_down_too() -> None:
    data = table([("A", "baseline", 5), ("A", "6m", 2)])
    change = crtstats.fidelity_change(crtstats.score_fidelity(data), to_review="6m")
    assert change["band_step"].tolist() == [-2]
    assert change["total_change"].tolist() == [78.0 - 195.0]


def test_other_scale_change_uses_its_own_domains_and_bands() -> None:
    data = pd.DataFrame({
        "team_id": ["A", "A"], "review": ["pre", "post"],
        "q1": [1, 3], "q2": [1, 3], "q3": [1, 3], "q4": [1, 3], "q5": [1, 4], "q6": [1, 4],
    })
    scores = crtstats.score_fidelity(data, scale=DEMO_KEY)
    change = crtstats.fidelity_change(scores, from_review="pre", to_review="post",
                                      scale=DEMO_KEY)
    row = change.iloc[0]
    assert (row["total_change"], row["band_from"], row["band_to"], row["band_step"]) == (
        14.0, "poor", "good", 2)
    assert row["access_sum_change"] == 8.0 and row["delivery_mean_change"] == 3.0


def test_bad_input_is_named() -> None:
    scores = crtstats.score_fidelity(table([("A", "baseline", 3), ("A", "12m", 4)]))
    with pytest.raises(InvalidParameterError, match=r"'12 m'.*reviews present"):
        crtstats.fidelity_change(scores, to_review="12 m")
    with pytest.raises(InvalidParameterError, match="must differ"):
        crtstats.fidelity_change(scores, from_review="12m", to_review="12m")
    with pytest.raises(InvalidParameterError, match=r"lacks the column\(s\) \['band'\]"):
        crtstats.fidelity_change(scores.drop(columns="band"))
    with pytest.raises(InvalidParameterError, match="more than once"):
        crtstats.fidelity_change(pd.concat([scores, scores.iloc[:1]]))
    with pytest.raises(InvalidParameterError, match="DataFrame"):
        crtstats.fidelity_change(scores.to_dict())  # type: ignore[arg-type]


def test_ordered_categorical_reviews_work() -> None:
    data = table([("A", "baseline", 3), ("A", "6m", 4), ("B", "baseline", 2)])
    data["review"] = pd.Categorical(data["review"], categories=["baseline", "6m", "12m"],
                                    ordered=True)
    change = crtstats.fidelity_change(crtstats.score_fidelity(data), to_review="6m")
    assert change["status"].tolist() == ["complete", "missing_to_review"]
    assert change["total_change"].tolist()[0] == 39.0

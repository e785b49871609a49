"""Scoring fidelity reviews with a scale key: totals, domains, bands, proration, checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import crtstats
from crtstats import datasets
from crtstats._resources import schema_dir
from crtstats.exceptions import (
    InvalidParameterError,
    ProrationWarning,
    ReasonCode,
    ScaleKeyError,
    SchemaValidationError,
)
from crtstats.scales import available_scales, load_scale, score_columns

HERE = Path(__file__).resolve().parent
DEMO_KEY = HERE / "scales" / "demo_scale_v1.yaml"
CORE_COLUMNS = [
    "team_id", "review", "total", "mean_item", "n_items_scored", "prorated", "band",
    "referrals_access_sum", "referrals_access_mean", "content_delivery_sum",
    "content_delivery_mean", "staffing_procedures_sum", "staffing_procedures_mean",
    "location_timing_sum", "location_timing_mean",
]
ITEMS = [f"item_{i:02d}" for i in range(1, 40)]


def review(scores: list[float | None] | float, team: str = "T1", rev: str = "baseline",
           **extra: object) -> dict[str, object]:
    """One wide review row; a single number fills every item."""
    values = [scores] * 39 if not isinstance(scores, list) else scores
    return {"team_id": team, "review": rev, **dict(zip(ITEMS, values, strict=True)), **extra}


def frame(*rows: dict[str, object]) -> pd.DataFrame:
    data = pd.DataFrame(list(rows))
    data[ITEMS] = data[ITEMS].astype("Int64")
    return data


# ---- the key ---------------------------------------------------------------------------


def test_core_key_matches_the_published_structure() -> None:
    key = load_scale("core_crt_v2")
    assert key.n_items == 39 and key.columns == tuple(ITEMS)
    assert (key.item_min, key.item_max, key.total_min, key.total_max) == (1, 5, 39, 195)
    ranges = {d.key: (d.columns[0], d.columns[-1], len(d.columns)) for d in key.domains}
    assert ranges == {
        "referrals_access": ("item_01", "item_10", 10),
        "content_delivery": ("item_11", "item_26", 16),
        "staffing_procedures": ("item_27", "item_36", 10),
        "location_timing": ("item_37", "item_39", 3),
    }
    assert key.bands == (("low", 39.0), ("moderate", 117.0), ("high", 156.0))
    assert "core_crt_v2" in available_scales()
    assert score_columns(key) == CORE_COLUMNS


def test_key_file_lives_in_data_schema_scales() -> None:
    path = schema_dir() / "scales" / "core_crt_v2.yaml"
    raw = yaml.safe_load(path.read_text())
    assert raw["key"] == "core_crt_v2" and len(raw["items"]) == 39


def test_unknown_scale_names_the_shipped_keys() -> None:
    with pytest.raises(ScaleKeyError, match=r"unknown scale 'core_v9'.*core_crt_v2"):
        load_scale("core_v9")
    with pytest.raises(ScaleKeyError, match="not found"):
        load_scale(HERE / "scales" / "no_such_key.yaml")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda k: k["items"].pop(2), "numbered 1 to n"),
        (lambda k: k["items"][1].update(column="q1"), "columns repeat"),
        (lambda k: k["domains"][1].update(first_item=4), "overlap"),
        (lambda k: k["domains"].pop(), "belong to no domain"),
        (lambda k: k["total_range"].update(max=25), "total_range"),
        (lambda k: k["bands"].reverse(), "bands must ascend"),
        (lambda k: k["bands"][0].update({"from": 1}), "bands must ascend"),
        (lambda k: k["missing"].update(proration="carry_forward"), "proration"),
        (lambda k: k.pop("item_range"), "malformed"),
        (lambda k: k.update(key="other_name"), "file name stem"),
    ],
)
def test_malformed_keys_are_rejected(tmp_path: Path, edit: object, message: str) -> None:
    raw = yaml.safe_load(DEMO_KEY.read_text())
    edit(raw)  # type: ignore[operator]
    path = tmp_path / "demo_scale_v1.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ScaleKeyError, match=message):
        load_scale(path)


# ---- scoring ----------------------------------------------------------------------------


def test_example_totals_are_item_sums_in_input_order() -> None:
    fidelity = datasets.load_example().fidelity
    scores = crtstats.score_fidelity(fidelity)
    assert list(scores.columns) == CORE_COLUMNS
    assert scores.index.equals(fidelity.index)
    assert (scores["team_id"] == fidelity["team_id"]).all()
    assert (scores["review"] == fidelity["review"]).all()
    complete = fidelity[ITEMS].notna().all(axis=1).to_numpy()
    item_sum = fidelity[ITEMS].astype(float).sum(axis=1).to_numpy()
    np.testing.assert_array_equal(scores["total"].to_numpy()[complete], item_sum[complete])
    assert scores["total"][~complete].isna().all() and scores["band"][~complete].isna().all()
    assert not scores["prorated"].any()
    np.testing.assert_array_equal(scores["n_items_scored"],
                                  fidelity[ITEMS].notna().sum(axis=1).to_numpy())
    domain = fidelity[ITEMS[10:26]].astype(float)
    np.testing.assert_allclose(scores["content_delivery_mean"][complete],
                               domain.mean(axis=1)[complete], rtol=1e-15)


def test_dtypes_follow_the_contract() -> None:
    scores = crtstats.score_fidelity(frame(review(3), review([None] + [4] * 38)))
    assert scores["total"].dtype == np.float64 and scores["mean_item"].dtype == np.float64
    assert scores["n_items_scored"].dtype == np.int64
    assert scores["prorated"].dtype == np.bool_
    assert isinstance(scores["band"].dtype, pd.StringDtype)
    assert scores["band"].tolist() == ["moderate", pd.NA]
    for column in CORE_COLUMNS[7:]:
        assert scores[column].dtype == np.float64


def test_hand_computed_review() -> None:
    # referrals 1-10 all 2; content 11-26 all 4; staffing 27-36 all 3; location 37-39: 5, 5, 2
    items = [2] * 10 + [4] * 16 + [3] * 10 + [5, 5, 2]
    row = crtstats.score_fidelity(frame(review(items))).iloc[0]
    assert row["total"] == 20 + 64 + 30 + 12 == 126
    assert row["mean_item"] == pytest.approx(126 / 39, rel=1e-15)
    assert row["band"] == "moderate" and row["n_items_scored"] == 39 and not row["prorated"]
    assert (row["referrals_access_sum"], row["referrals_access_mean"]) == (20, 2)
    assert (row["content_delivery_sum"], row["content_delivery_mean"]) == (64, 4)
    assert (row["staffing_procedures_sum"], row["location_timing_sum"]) == (30, 12)
    assert row["location_timing_mean"] == 4


def test_extra_columns_are_left_out_and_index_kept() -> None:
    data = frame(review(3, team="A", note="x", scale_version="core_crt_v2"), review(5, team="B"))
    data.index = pd.Index([10, 3])
    scores = crtstats.score_fidelity(data)
    assert list(scores.columns) == CORE_COLUMNS
    assert scores.index.tolist() == [10, 3]
    assert scores["total"].tolist() == [117.0, 195.0]


def test_missing_item_gives_no_total_by_default() -> None:
    items: list[float | None] = [4] * 39
    items[12] = None  # item 13, content and delivery
    row = crtstats.score_fidelity(frame(review(items))).iloc[0]
    assert np.isnan(row["total"]) and np.isnan(row["mean_item"]) and row["band"] is pd.NA
    assert row["n_items_scored"] == 38 and not row["prorated"]
    assert np.isnan(row["content_delivery_sum"]) and np.isnan(row["content_delivery_mean"])
    assert row["referrals_access_sum"] == 40 and row["location_timing_sum"] == 12


def test_proration_within_max_missing_is_flagged_and_warned() -> None:
    items: list[float | None] = [3] * 10 + [4] * 16 + [3] * 10 + [5, 5, 5]
    items[0] = None
    items[37] = None  # one referrals item and one location item missing
    data = frame(review(items), review(3, team="T2"))
    with pytest.warns(ProrationWarning, match=r"1 of 2 review totals were prorated"):
        scores = crtstats.score_fidelity(data, max_missing=2)
    row = scores.iloc[0]
    scored_sum = 9 * 3 + 16 * 4 + 10 * 3 + 2 * 5
    assert row["total"] == pytest.approx(scored_sum / 37 * 39, rel=1e-15)
    assert row["prorated"] and row["n_items_scored"] == 37
    assert row["referrals_access_sum"] == 30 and row["location_timing_sum"] == 15
    assert row["mean_item"] == pytest.approx(scored_sum / 37, rel=1e-15)
    assert not scores.iloc[1]["prorated"] and scores.iloc[1]["total"] == 117
    # the same review with max_missing=1 has too many missing items: no total, no warning
    strict = crtstats.score_fidelity(data, max_missing=1).iloc[0]
    assert np.isnan(strict["total"]) and not strict["prorated"]


def test_prorated_total_hits_band_boundary_exactly() -> None:
    # 38 items scored 3 (sum 114) with one missing: prorated total 114 * 39 / 38 = 117
    items: list[float | None] = [3] * 39
    items[5] = None
    with pytest.warns(ProrationWarning):
        row = crtstats.score_fidelity(frame(review(items)), max_missing=1).iloc[0]
    assert row["total"] == 117.0 and row["band"] == "moderate"


def test_a_domain_with_nothing_scored_has_no_domain_score() -> None:
    items: list[float | None] = [4] * 36 + [None] * 3
    with pytest.warns(ProrationWarning):
        row = crtstats.score_fidelity(frame(review(items)), max_missing=3).iloc[0]
    assert row["total"] == 156 and row["band"] == "high" and row["prorated"]
    assert np.isnan(row["location_timing_sum"]) and np.isnan(row["location_timing_mean"])


@pytest.mark.parametrize("bad", [-1, 39, 1.5, True, "2"])
def test_max_missing_must_be_a_small_whole_number(bad: object) -> None:
    with pytest.raises(InvalidParameterError, match=r"max_missing must be a whole number"):
        crtstats.score_fidelity(frame(review(3)), max_missing=bad)  # type: ignore[arg-type]


def test_empty_table_scores_to_empty_frame() -> None:
    empty = frame(review(3)).iloc[:0]
    scores = crtstats.score_fidelity(empty)
    assert list(scores.columns) == CORE_COLUMNS and len(scores) == 0


# ---- validation before scoring ---------------------------------------------------------


def test_every_bad_cell_is_reported_at_once() -> None:
    data = pd.DataFrame([review(3), review(3, team="T2"), review(3, team="T3")])
    data = data.astype({c: object for c in ITEMS})
    data.loc[0, "item_01"] = 0
    data.loc[0, "item_39"] = 6
    data.loc[1, "item_05"] = 2.5
    data.loc[2, "item_10"] = "high"
    data.loc[2, "item_11"] = 7.5
    data = data.drop(columns=["item_20"])
    with pytest.raises(SchemaValidationError) as err:
        crtstats.score_fidelity(data)
    cases = err.value.failure_cases
    assert list(cases.columns) == ["table", "row", "column", "value", "check", "reason_code"]
    got = {(None if pd.isna(r) else int(r), c, code) for r, c, code in
           cases[["row", "column", "reason_code"]].itertuples(index=False)}
    assert got == {
        (None, "item_20", ReasonCode.MISSING_COLUMN),
        (0, "item_01", ReasonCode.MINIMUM),
        (0, "item_39", ReasonCode.MAXIMUM),
        (1, "item_05", ReasonCode.NOT_INTEGER),
        (2, "item_10", ReasonCode.TYPE),
        (2, "item_11", ReasonCode.NOT_INTEGER),
        (2, "item_11", ReasonCode.MAXIMUM),
    }
    assert (cases["table"] == "fidelity").all()
    assert cases.loc[cases["column"] == "item_39", "value"].item() == 6
    assert "7 problem(s)" in str(err.value)


def test_absent_identifier_columns_are_reported() -> None:
    data = frame(review(3)).drop(columns=["team_id"])
    with pytest.raises(SchemaValidationError) as err:
        crtstats.score_fidelity(data)
    assert err.value.failure_cases["reason_code"].tolist() == [ReasonCode.MISSING_COLUMN]


def test_scale_version_must_name_the_key() -> None:
    data = frame(review(3, scale_version="core_crt_v2"), review(3, scale_version="core_v1"))
    with pytest.raises(SchemaValidationError) as err:
        crtstats.score_fidelity(data)
    cases = err.value.failure_cases
    assert cases[["row", "column", "reason_code"]].values.tolist() == [
        [1, "scale_version", ReasonCode.ENUM]]


def test_booleans_and_non_frames_are_rejected() -> None:
    data = frame(review(3))
    data["item_02"] = True
    with pytest.raises(SchemaValidationError, match="item_02"):
        crtstats.score_fidelity(data)
    with pytest.raises(InvalidParameterError, match="must be a pandas DataFrame"):
        crtstats.score_fidelity([review(3)])  # type: ignore[arg-type]


def test_strings_from_a_raw_csv_are_read_as_numbers() -> None:
    data = pd.DataFrame([review(3)]).astype({c: "string" for c in ITEMS})
    assert crtstats.score_fidelity(data)["total"].tolist() == [117.0]


# ---- a second scale needs only a key file ---------------------------------------------


def test_second_scale_from_its_key_file_only() -> None:
    data = pd.DataFrame({
        "team_id": ["A", "B", "C", "D"], "review": ["baseline"] * 4,
        "q1": [0, 4, 2, 3], "q2": [1, 4, 2, 3], "q3": [2, 4, 2, 3], "q4": [3, 4, 2, 3],
        "q5": [0, 2, 2, None], "q6": [1, 4, 2, 3],
    })
    with pytest.warns(ProrationWarning):
        scores = crtstats.score_fidelity(data, scale=DEMO_KEY, max_missing=1)
    assert list(scores.columns) == [
        "team_id", "review", "total", "mean_item", "n_items_scored", "prorated", "band",
        "access_sum", "access_mean", "delivery_sum", "delivery_mean"]
    assert scores["total"].tolist() == [7.0, 22.0, 12.0, 18.0]
    assert scores["band"].tolist() == ["poor", "good", "fair", "good"]
    assert scores["prorated"].tolist() == [False, False, False, True]
    assert scores["delivery_sum"].tolist() == [1.0, 6.0, 4.0, 6.0]
    with pytest.raises(SchemaValidationError) as err:
        crtstats.score_fidelity(data.assign(q3=[5, 0, 0, 0]), scale=str(DEMO_KEY))
    assert err.value.failure_cases["reason_code"].tolist() == [ReasonCode.MAXIMUM]


def test_scores_the_fidelity_table_of_a_loaded_trial() -> None:
    from crtstats.trial import load_trial

    trial = load_trial(**datasets.example_paths())
    scores = crtstats.score_fidelity(trial.fidelity)
    expected = crtstats.score_fidelity(datasets.load_example().fidelity)
    pd.testing.assert_series_equal(scores["total"], expected["total"])
    assert scores["team_id"].tolist() == trial.fidelity["team_id"].tolist()


def test_infinite_and_unreadable_cells_are_type_problems() -> None:
    data = pd.DataFrame([review(3), review(3, team="T2")])
    data["item_04"] = [np.inf, 3.0]
    data["item_07"] = pd.array(["3", "n/a"], dtype="string")
    with pytest.raises(SchemaValidationError) as err:
        crtstats.score_fidelity(data)
    cases = err.value.failure_cases
    assert cases[["row", "column", "reason_code"]].values.tolist() == [
        [0, "item_04", ReasonCode.TYPE], [1, "item_07", ReasonCode.TYPE]]


def test_a_loaded_key_can_be_passed_directly() -> None:
    key = load_scale(DEMO_KEY)
    data = pd.DataFrame({"team_id": ["A"], "review": ["pre"], "q1": [4], "q2": [4],
                         "q3": [4], "q4": [4], "q5": [4], "q6": [4]})
    assert crtstats.score_fidelity(data, scale=key)["band"].tolist() == ["good"]
    assert load_scale(key) is key

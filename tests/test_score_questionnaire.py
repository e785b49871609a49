"""score_questionnaire and questionnaire_alpha: against hand-computed totals and R's
psych (tests/reference/questionnaire_alpha.R), every bad input, and ``crtstats score``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from crtstats.cli import main
from crtstats.exceptions import (
    InvalidParameterError,
    ProrationWarning,
    SchemaValidationError,
)
from crtstats.scales import (
    load_instrument,
    questionnaire_alpha,
    questionnaire_columns,
    score_questionnaire,
)

HERE = Path(__file__).resolve().parent
REF = json.loads((HERE / "reference" / "questionnaire_alpha.json").read_text())
DEMO_KEY = HERE / "scales" / "demo_wellbeing_v1.yaml"
# Totals are sums of a few small whole numbers (exact in floating point); alpha is a
# ratio of sums of squares of a few hundred small numbers: both agree with R far below
# 1e-10, which leaves room only for rounding in the order of summation.
TOL = 1e-10


def table(items: list[list[Any]], columns: tuple[str, ...], *, id_column: str
          ) -> pd.DataFrame:
    n = len(items)
    block = pd.DataFrame(items, columns=list(columns), dtype="Float64").astype("Int64")
    ids = pd.DataFrame({"team_id": [f"T{i % 5:02d}" for i in range(n)],
                        id_column: [f"p{i}" for i in range(n)],
                        "wave": ["baseline" if i % 2 else "follow_up" for i in range(n)]})
    return pd.concat([ids, block], axis=1)


@pytest.fixture(scope="module")
def csq() -> pd.DataFrame:
    return table(REF["csq8"]["items"], load_instrument("csq8").columns,
                 id_column="respondent_id")


@pytest.fixture(scope="module")
def ghq() -> pd.DataFrame:
    return table(REF["ghq12"]["items"], load_instrument("ghq12").columns, id_column="staff_id")


@pytest.fixture(scope="module")
def demo() -> pd.DataFrame:
    return table(REF["demo_wellbeing_v1"]["items"], load_instrument(DEMO_KEY).columns,
                 id_column="respondent_id")


def nan(values: list[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def test_csq8_totals_and_frame(csq: pd.DataFrame) -> None:
    scores = score_questionnaire(csq, "csq8")
    assert list(scores.columns) == questionnaire_columns(load_instrument("csq8"),
                                                         id_column="respondent_id")
    assert list(scores.columns) == ["team_id", "respondent_id", "wave", "responded",
                                    "total", "n_items_scored", "prorated"]
    np.testing.assert_allclose(scores["total"], nan(REF["csq8"]["total"]), rtol=0, atol=TOL)
    assert scores["n_items_scored"].tolist() == [8 - m for m in REF["csq8"]["n_missing"]]
    assert scores.dtypes.astype(str).tolist()[3:] == ["bool", "float64", "int64", "bool"]
    assert not scores["prorated"].any() and scores["responded"].all()
    assert scores.index.equals(csq.index)


def test_proration_only_by_choice_and_flagged(csq: pd.DataFrame) -> None:
    with pytest.raises(InvalidParameterError, match="pass prorate=True"):
        score_questionnaire(csq, "csq8", max_missing=1)
    with pytest.warns(ProrationWarning, match="csq8 totals were prorated"):
        scores = score_questionnaire(csq, "csq8", max_missing=1, prorate=True)
    np.testing.assert_allclose(scores["total"], nan(REF["csq8"]["prorated_total"]),
                               rtol=0, atol=TOL)
    one_missing = np.array(REF["csq8"]["n_missing"]) == 1
    assert one_missing.any()
    assert scores["prorated"].to_numpy().tolist() == one_missing.tolist()
    # prorate with max_missing=0 prorates nothing
    same = score_questionnaire(csq, "csq8", prorate=True)
    pd.testing.assert_frame_equal(same, score_questionnaire(csq, "csq8"))


def test_ghq12_both_scorings_and_caseness(ghq: pd.DataFrame) -> None:
    ghq_scores = score_questionnaire(ghq, "ghq12")  # the default scoring is the first
    np.testing.assert_allclose(ghq_scores["total"], REF["ghq12"]["ghq_total"], rtol=0,
                               atol=TOL)
    assert str(ghq_scores["case"].dtype) == "Int64"
    assert ghq_scores["case"].tolist() == REF["ghq12"]["case_4"]
    likert = score_questionnaire(ghq, "ghq12", scoring="likert")
    np.testing.assert_allclose(likert["total"], REF["ghq12"]["likert_total"], rtol=0,
                               atol=TOL)
    assert "case" not in likert.columns and list(likert.columns)[1] == "staff_id"
    lower = score_questionnaire(ghq, "ghq12", caseness_threshold=3)
    assert lower["case"].tolist() == REF["ghq12"]["case_3"]
    assert lower["total"].equals(ghq_scores["total"])
    with pytest.raises(InvalidParameterError, match="has none"):
        score_questionnaire(ghq, "ghq12", scoring="likert", caseness_threshold=3)
    with pytest.raises(InvalidParameterError, match="above 0 and at most 12"):
        score_questionnaire(ghq, "ghq12", caseness_threshold=13)


def test_reversed_items(demo: pd.DataFrame) -> None:
    scores = score_questionnaire(demo, DEMO_KEY)
    np.testing.assert_allclose(scores["total"], REF["demo_wellbeing_v1"]["total"], rtol=0,
                               atol=TOL)
    assert scores["case"].tolist() == REF["demo_wellbeing_v1"]["case_20"]
    # reversing item 2 by hand and scoring with a key without reversal agrees
    row = {"team_id": "A", "respondent_id": "x", "wave": "baseline",
           "wb_01": 5, "wb_02": 1, "wb_03": 5, "wb_04": 5, "wb_05": 1, "wb_06": 5}
    assert score_questionnaire(pd.DataFrame([row]), DEMO_KEY)["total"].tolist() == [30.0]


def test_alpha_agrees_with_psych(csq: pd.DataFrame, ghq: pd.DataFrame,
                                 demo: pd.DataFrame) -> None:
    cases = ((questionnaire_alpha(csq, "csq8"), REF["csq8"]["alpha"]),
             (questionnaire_alpha(ghq, "ghq12", scoring="likert"), REF["ghq12"]["alpha_likert"]),
             (questionnaire_alpha(ghq, "ghq12"), REF["ghq12"]["alpha_ghq"]),
             (questionnaire_alpha(demo, DEMO_KEY), REF["demo_wellbeing_v1"]["alpha"]))
    for res, ref in cases:
        assert res.alpha == pytest.approx(ref["raw_alpha"], abs=TOL)
        assert res.std_alpha == pytest.approx(ref["std_alpha"], abs=TOL)
        np.testing.assert_allclose(res.alpha_if_deleted, ref["drop_raw_alpha"], rtol=0,
                                   atol=TOL)
        np.testing.assert_allclose(res.std_alpha_if_deleted, ref["drop_std_alpha"], rtol=0,
                                   atol=TOL)
    csq_alpha = cases[0][0]
    assert csq_alpha.n == REF["csq8"]["n_complete"]
    assert csq_alpha.n_incomplete == len(csq) - REF["csq8"]["n_complete"]


def test_alpha_of_one_wave(ghq: pd.DataFrame) -> None:
    base = questionnaire_alpha(ghq, "ghq12", wave="baseline")
    assert base.n == int((ghq["wave"] == "baseline").sum())
    with pytest.raises(InvalidParameterError, match="wave must be one of"):
        questionnaire_alpha(ghq, "ghq12", wave="6m")


def test_non_responders() -> None:
    key = load_instrument("csq8")
    frame = pd.DataFrame({"team_id": ["A", "A"], "respondent_id": ["x", "y"],
                          "wave": ["baseline"] * 2, "responded": [True, False],
                          **{c: [4, None] for c in key.columns}})
    scores = score_questionnaire(frame, "csq8")
    assert scores["total"].tolist()[0] == 32.0 and np.isnan(scores["total"].iloc[1])
    assert scores["responded"].tolist() == [True, False]
    assert scores["n_items_scored"].tolist() == [8, 0]
    frame.loc[1, "csq8_04"] = 3
    with pytest.raises(SchemaValidationError) as err:
        score_questionnaire(frame, "csq8")
    cases = err.value.failure_cases
    assert cases[["table", "row", "column", "reason_code"]].values.tolist() == [
        ["user_questionnaires", 1, "csq8_04", "nonresponse_items"]]


def test_out_of_range_and_non_integer_items_list_every_cell(csq: pd.DataFrame) -> None:
    bad = csq.astype(object)
    bad.loc[0, "csq8_01"] = 5
    bad.loc[3, "csq8_08"] = 0
    bad.loc[4, "csq8_02"] = 2.5
    bad.loc[6, "csq8_03"] = "a lot"
    with pytest.raises(SchemaValidationError, match="user_questionnaires items") as err:
        score_questionnaire(bad, "csq8")
    cases = err.value.failure_cases
    assert cases[["table", "row", "column", "value", "reason_code"]].values.tolist() == [
        ["user_questionnaires", 0, "csq8_01", 5, "maximum"],
        ["user_questionnaires", 3, "csq8_08", 0, "minimum"],
        ["user_questionnaires", 4, "csq8_02", 2.5, "not_integer"],
        ["user_questionnaires", 6, "csq8_03", "a lot", "type"]]
    # a GHQ-12 score of 4 is out of range
    with pytest.raises(SchemaValidationError, match="item score <= 3"):
        ghq = load_instrument("ghq12")
        score_questionnaire(pd.DataFrame([{"team_id": "A", "staff_id": "s", "wave":
                                           "baseline", **dict.fromkeys(ghq.columns, 4)}]),
                            ghq)


def test_absent_columns_and_bad_options(csq: pd.DataFrame) -> None:
    with pytest.raises(SchemaValidationError) as err:
        score_questionnaire(csq.drop(columns=["wave", "csq8_05"]), "csq8")
    assert err.value.failure_cases["column"].tolist() == ["csq8_05", "wave"]
    for options, message in (({"max_missing": 8, "prorate": True}, "from 0 to 7"),
                             ({"max_missing": -1}, "from 0 to 7"),
                             ({"prorate": "yes"}, "prorate must be True or False"),
                             ({"scoring": "likert"}, "scoring must be one of 'total'")):
        with pytest.raises(InvalidParameterError, match=message):
            score_questionnaire(csq, "csq8", **options)
    with pytest.raises(InvalidParameterError, match="DataFrame"):
        score_questionnaire(csq.to_dict(), "csq8")  # type: ignore[arg-type]


def test_row_order_does_not_change_scores(ghq: pd.DataFrame) -> None:
    order = np.random.default_rng(3).permutation(len(ghq))
    shuffled = score_questionnaire(ghq.iloc[order], "ghq12")
    pd.testing.assert_frame_equal(shuffled.sort_index(), score_questionnaire(ghq, "ghq12"))


def test_cli_scores_a_questionnaire_file(tmp_path: Path, ghq: pd.DataFrame,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "staff.csv"
    ghq.to_csv(path, index=False)
    out = tmp_path / "scores.csv"
    args = ["score", "--staff-questionnaires", str(path), "--instrument", "ghq12",
            "--out", str(out)]
    assert main(args) == 0
    assert "scored 140 staff_questionnaires row(s) with ghq12_ghq" in capsys.readouterr().out
    written = pd.read_csv(out, keep_default_na=False, na_values=[""])
    expected = score_questionnaire(ghq, "ghq12")
    assert list(written.columns) == list(expected.columns)
    np.testing.assert_array_equal(written["total"], expected["total"])  # full precision
    assert written["case"].tolist() == expected["case"].tolist()
    assert main([*args, "--force", "--scoring", "likert", "--caseness-threshold", "3"]) == 1
    assert "has none" in capsys.readouterr().err
    assert main([*args, "--force", "--scoring", "likert"]) == 0
    assert "case" not in pd.read_csv(out).columns


def test_cli_score_problems_and_options(tmp_path: Path, csq: pd.DataFrame,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "users.csv"
    bad = csq.astype(object)
    bad.loc[1, "wave"] = "month 6"  # the table schema is checked before scoring
    bad.loc[2, "csq8_01"] = 9  # out of range: the key's check
    bad.to_csv(path, index=False)
    out = tmp_path / "scores.csv"
    base = ["score", "--user-questionnaires", str(path), "--out", str(out)]
    assert main(base) == 2
    assert "needs --instrument" in capsys.readouterr().err
    assert main([*base, "--instrument", "csq8"]) == 1
    err = capsys.readouterr().err
    assert "month 6" in err and "Traceback" not in err and not out.exists()
    bad.loc[1, "wave"] = "baseline"
    bad.to_csv(path, index=False)
    assert main([*base, "--instrument", "csq8"]) == 1
    assert "csq8_01" in capsys.readouterr().err and not out.exists()
    csq.to_csv(path, index=False)
    assert main([*base, "--instrument", "csq8", "--max-missing", "1"]) == 1
    assert "pass prorate=True" in capsys.readouterr().err
    assert main([*base, "--instrument", "csq8", "--max-missing", "1", "--prorate"]) == 0
    captured = capsys.readouterr()
    assert "crtstats: warning:" in captured.err and "prorated" in captured.err
    assert int(pd.read_csv(out)["prorated"].sum()) == int(
        (np.array(REF["csq8"]["n_missing"]) == 1).sum())
    assert main([*base, "--instrument", "csq8", "--scale", "demo.yaml"]) == 2
    assert "--scale applies to --fidelity" in capsys.readouterr().err
    assert main(["score", "--fidelity", str(path), "--instrument", "csq8", "--prorate",
                 "--out", str(out), "--force"]) == 2
    assert "--instrument, --prorate apply to questionnaires" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # argparse: one source at a time
        main(["score", "--fidelity", str(path), "--user-questionnaires", str(path),
              "--out", str(out)])
    assert exit_.value.code == 2 and "not allowed with" in capsys.readouterr().err

"""Instrument keys: the shipped keys, a user's own key, and every malformed key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from crtstats.exceptions import InvalidParameterError, ScaleKeyError
from crtstats.scales import available_instruments, load_instrument

DEMO_KEY = Path(__file__).resolve().parent / "scales" / "demo_wellbeing_v1.yaml"
ROOT = Path(__file__).resolve().parents[1]


def test_shipped_keys() -> None:
    assert available_instruments() == ("csq8", "ghq12")
    csq = load_instrument("csq8")
    assert (csq.n_items, csq.item_min, csq.item_max, csq.reverse) == (8, 1, 4, ())
    assert csq.columns == tuple(f"csq8_{i:02d}" for i in range(1, 9))
    assert csq.scoring_names == ("total",) and csq.outcome_name() == "csq8"
    total = csq.scoring()
    assert (total.total_min, total.total_max, total.has_caseness) == (8, 32, False)
    ghq = load_instrument("ghq12")
    assert ghq.columns == tuple(f"ghq12_{i:02d}" for i in range(1, 13))
    assert ghq.scoring_names == ("ghq", "likert")
    assert ghq.scoring("ghq").recode == ((0, 0.0), (1, 0.0), (2, 1.0), (3, 1.0))
    assert ghq.scoring("ghq").caseness_threshold == 4.0
    assert (ghq.scoring("likert").total_min, ghq.scoring("likert").total_max) == (0, 36)
    assert [ghq.outcome_name(s) for s in ghq.scoring_names] == ["ghq12_ghq", "ghq12_likert"]
    with pytest.raises(InvalidParameterError, match="'ghq', 'likert'.*got 'sum'"):
        ghq.scoring("sum")


def test_keys_hold_numbers_and_cite_their_sources() -> None:
    for name in available_instruments():
        text = (ROOT / "data_schema" / "instruments" / f"{name}.yaml").read_text()
        assert "label" not in yaml.safe_load(text)["items"][0]  # no item wording
    assert "Attkisson CC, Zwick R (1982)" in (ROOT / "data_schema" / "instruments" /
                                               "csq8.yaml").read_text()
    assert "Goldberg D, Williams P (1988)" in (ROOT / "data_schema" / "instruments" /
                                                "ghq12.yaml").read_text()


def test_a_users_own_key_with_reversed_items() -> None:
    key = load_instrument(DEMO_KEY)
    assert key.key == "demo_wellbeing_v1" and key.reverse == (2, 5)
    assert load_instrument(str(DEMO_KEY)) is key and load_instrument(key) is key
    assert key.scoring().caseness_threshold == 20.0


def test_unknown_instrument_names_the_shipped_keys() -> None:
    with pytest.raises(ScaleKeyError, match=r"unknown instrument 'csq9'.*\['csq8', 'ghq12'\]"):
        load_instrument("csq9")
    with pytest.raises(ScaleKeyError, match="not found"):
        load_instrument("no/such/key.yaml")


def _demo() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(DEMO_KEY.read_text())
    return raw


def _write(tmp_path: Path, raw: Any, name: str = "demo_wellbeing_v1") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False) if not isinstance(raw, str) else raw)
    return path


def _edit(change: Any) -> dict[str, Any]:
    raw = _demo()
    change(raw)
    return raw


BAD_KEYS = [
    (lambda r: r.update(revers=[2]), r"the key: unknown entry \['revers'\]"),
    (lambda r: r.pop("scorings"), r"the key: lacks \['scorings'\]"),
    (lambda r: r.update(key="other"), "key: 'other' must equal the file name stem"),
    (lambda r: r.update(item_range={"min": 5, "max": 1}), "item_range: min 5 must be below"),
    (lambda r: r.update(item_range={"min": 1.5, "max": 5}), "item_range.min: must be a whole"),
    (lambda r: r["items"].__setitem__(2, {"number": 7, "column": "wb_03"}),
     r"items: must be numbered 1 to n in order; got \[1, 2, 7"),
    (lambda r: r["items"].__setitem__(2, {"number": 3, "column": "wb_02"}),
     r"items: columns repeat: \['wb_02'\]"),
    (lambda r: r["items"].__setitem__(0, {"number": 1, "column": "wb 01"}),
     r"items\[0\].column: must be a column name"),
    (lambda r: r["items"].__setitem__(0, {"number": 1, "column": "wb_01", "label": "x"}),
     r"items\[0\]: unknown entry \['label'\]"),
    (lambda r: r.update(reverse=[2, 9]), r"reverse: names item\(s\) \[9\]"),
    (lambda r: r.update(reverse=[2, 2]), "reverse: lists an item twice"),
    (lambda r: r.update(reverse="2"), "reverse: must be a list"),
    (lambda r: r.update(scorings={}), "scorings: must map one or more names"),
    (lambda r: r["scorings"]["sum"].update(total_range={"min": 6, "max": 31}),
     r"scorings.sum.total_range: \(6.0, 31.0\) must equal the number of items \(6\)"),
    (lambda r: r["scorings"]["sum"].update(recode={1: 0, 2: 0, 3: 1, 4: 1}),
     r"scorings.sum.recode: must give a score for every item value 1 to 5"),
    (lambda r: r["scorings"]["sum"].update(recode={1: 0, 2: 0, 3: 1, 4: 1, 5: "x"}),
     r"scorings.sum.recode\[5\]: must be a finite number"),
    (lambda r: r["scorings"]["sum"].update(caseness={"threshold": 31}),
     "scorings.sum.caseness.threshold: 31.0 must be above the lowest total 6.0"),
    (lambda r: r["scorings"]["sum"].update(caseness={"cut": 20}),
     r"scorings.sum.caseness: unknown entry \['cut'\]"),
    (lambda r: r["scorings"]["sum"].update(bands=[]),
     r"scorings.sum: unknown entry \['bands'\]"),
    (lambda r: r.update(scorings={"Sum": r["scorings"]["sum"]}), "scorings.Sum: a scoring's"),
    (lambda r: r.update(missing={"proration": "mean_imputation"}),
     "missing.proration: must be one of"),
    (lambda r: r.update(items=[]), "items: must be a non-empty list"),
]


@pytest.mark.parametrize(("change", "message"), BAD_KEYS)
def test_bad_keys_name_the_file_and_the_entry(tmp_path: Path, change: Any,
                                               message: str) -> None:
    path = _write(tmp_path, _edit(change))
    with pytest.raises(ScaleKeyError, match="instrument key demo_wellbeing_v1.yaml: " + message):
        load_instrument(path)


def test_a_key_that_is_not_a_yaml_mapping(tmp_path: Path) -> None:
    with pytest.raises(ScaleKeyError, match="not valid YAML"):
        load_instrument(_write(tmp_path, "key: [unclosed\n"))
    with pytest.raises(ScaleKeyError, match="must be a YAML mapping"):
        load_instrument(_write(tmp_path, "- a\n- b\n", name="other"))

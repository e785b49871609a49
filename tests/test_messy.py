"""The messy example is the shipped example under a trust's names: through its mapping
it gives back the clean example's tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import crtstats
from crtstats.datasets import MESSY_FILES, messy_tables, write_messy_example
from crtstats.schema import load_mapping


def test_messy_example_maps_back_to_the_clean_one(tmp_path: Path) -> None:
    paths = write_messy_example(tmp_path)
    assert {p.name for p in paths.values()} == set(MESSY_FILES.values())
    messy = crtstats.load_trial(teams=paths["workbook"], fidelity=paths["workbook"],
                                admissions=paths["admissions"],
                                columns=load_mapping(paths["mapping"]))
    clean = crtstats.load_trial(**{k: v for k, v in crtstats.datasets.example_paths().items()
                                   if k != "service_use"})
    for name in ("teams", "fidelity", "admissions", "service_use"):
        mine, theirs = getattr(messy, name), getattr(clean, name)
        pd.testing.assert_frame_equal(mine[list(theirs.columns)], theirs, check_dtype=False)
    assert messy.provenance["teams"]["sheet"] == "Teams"
    assert messy.exclusions["rows"].tolist() == [3]


def test_messy_tables_look_like_an_export() -> None:
    tables = messy_tables()
    assert set(tables["teams"]["Allocation"]) == {"Intervention", "Control"}
    assert set(tables["fidelity"]["Review"]) == {"Baseline", "6 months", "12 months"}
    assert "Q39" in tables["fidelity"].columns and "item_39" not in tables["fidelity"]
    assert set(tables["admissions"]["Admitted"]) == {"Yes", "No"}
    assert tables["teams"]["Date randomised"].iloc[0] == "01/03/2014"

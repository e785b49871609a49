"""The standard trial tables on the example trial, against base-R reference values.

Reference: tests/reference/tables.R (base R on the shipped example CSVs) wrote
tests/reference/tables.json. Golden Markdown/LaTeX files are in tests/golden/; rewrite
them after an intended change with ``python tests/test_tables_builders.py`` and review
the diff.

Tolerances against R (all relative, ``rtol=1e-12``; counts exact): means and SDs are
sums of a few hundred small integers divided once, so the only difference is
floating-point summation order (R uses long-double accumulation); 1e-12 is far above
that and far below any displayed digit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crtstats.analysis import EFFECT_COLUMNS, AnalysisResult
from crtstats.datasets import load_example
from crtstats.datasets._simulate import SimulatedTrial
from crtstats.exceptions import InvalidParameterError, SchemaValidationError
from crtstats.scales import score_fidelity
from crtstats.tables import (
    Table,
    baseline,
    consort_flow,
    effects,
    fidelity_by_arm,
    item_change,
)

ROOT = Path(__file__).resolve().parent
GOLDEN = ROOT / "golden"
REF = json.loads((ROOT / "reference" / "tables.json").read_text(encoding="utf-8"))
RTOL = 1e-12  # see the module docstring
ARMS = ("control", "intervention")

TRIAL = load_example()


def scores() -> pd.DataFrame:
    return score_fidelity(TRIAL.fidelity)


def effects_frame() -> pd.DataFrame:
    """A hand-made effects frame in the EFFECT_COLUMNS layout (ratio rows exponentiated)."""
    nan = float("nan")
    rows = [
        ["fidelity total", "LMM arm x review", "primary", "arm effect at 12m", "difference",
         9.83456, 2.10321, 17.5659, 0.01534, 21.73, "kenward-roger", "REML", 0.4123,
         0.1187, 0.6802, 25, 74,
         "efficiency-weighted", "mean difference", "conditional"],
        ["admitted", "GLMM", "primary", "arm effect, follow-up", "odds ratio", 0.70123,
         0.49877, 0.98590, 0.04123, 23.0, "between-within", "Laplace", 0.0461, nan, nan,
         25, 1388, "efficiency-weighted", "odds ratio", "conditional"],
        ["fidelity total", "ANCOVA (CR2)", "sensitivity", "arm effect at 12m", "difference",
         8.8, 1.1, 16.5, 0.0000123, 20.1, "bell-mccaffrey", "CR2", nan, nan, nan, 25, 25,
         "cluster-average", "mean difference", "marginal"],
        ["bed days", "GEE", "sensitivity", "rate ratio, follow-up", "rate ratio", 0.81,
         0.6, 1.09, 0.16, np.inf, "z", "robust", nan, nan, nan, 25, 1388,
         "participant-average", "rate ratio", "marginal"],
    ]
    # every column but the optional boundary and ICC-source flags (the builder fills them)
    given = [c for c in EFFECT_COLUMNS if c not in ("boundary", "icc_source")]
    return pd.DataFrame(rows, columns=given)


BUILDERS: dict[str, Any] = {
    "consort_flow": lambda: consort_flow(TRIAL),
    "consort_flow_suppressed": lambda: consort_flow(small_trial(), suppress_below=8),
    "baseline": lambda: baseline(TRIAL, scores=scores()),
    "baseline_suppressed": lambda: baseline(small_trial(), suppress_below=8),
    "fidelity_by_arm": lambda: fidelity_by_arm(scores(), TRIAL.teams),
    "item_change": lambda: item_change(TRIAL.fidelity, TRIAL.teams),
    "effects": lambda: effects(effects_frame()),
}


def small_trial() -> SimulatedTrial:
    """The example trial cut down to a few service users per team (small counts)."""
    admissions = TRIAL.admissions.groupby(["team_id", "period"], sort=False).head(2)
    return SimulatedTrial(teams=TRIAL.teams, fidelity=TRIAL.fidelity,
                          admissions=admissions.reset_index(drop=True),
                          service_use=TRIAL.service_use)


SMALL = small_trial()


def regenerate() -> None:
    """Rewrite this module's golden files (run by hand; see the module docstring)."""
    for name, build in BUILDERS.items():
        table = build()
        (GOLDEN / f"{name}.md").write_text(table.to_markdown(), encoding="utf-8", newline="")
        (GOLDEN / f"{name}.tex").write_text(table.to_latex(), encoding="utf-8", newline="")


def row(table: Table, label: str, column: str = "label") -> pd.Series:
    data = table.data
    match = data[data[column] == label]
    assert len(match) == 1, f"{label!r} should be one row of {column}"
    return match.iloc[0]


# -- golden files -----------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_builder_output_matches_golden_files(name: str) -> None:
    table = BUILDERS[name]()
    assert table.to_markdown() == (GOLDEN / f"{name}.md").read_text(encoding="utf-8")
    assert table.to_latex() == (GOLDEN / f"{name}.tex").read_text(encoding="utf-8")


# -- numbers against R ------------------------------------------------------------------
def test_consort_flow_counts_match_r() -> None:
    table = consort_flow(TRIAL)
    expected = {
        "randomised": "randomised", "reviewed at baseline": "reviewed_baseline",
        "reviewed at 6m": "reviewed_6m", "reviewed at 12m": "reviewed_12m",
        "analysed (12m review, all items scored)": "analysed_teams",
        "in the pre period": "users_pre", "in the follow-up period": "users_follow_up",
    }
    for stage, key in expected.items():
        got = row(table, stage, "stage")
        for arm in ARMS:
            assert got[arm] == REF["flow"][arm][key], (stage, arm)
        assert got["total"] == sum(REF["flow"][a][key] for a in ARMS)


def test_baseline_summaries_match_r() -> None:
    table = baseline(TRIAL)
    for arm in ARMS:
        ref = REF["baseline"][arm]
        assert row(table, "Service users")[f"{arm}_value"] == ref["users"]
        age = row(table, "Age, years")
        assert age[f"{arm}_n"] == ref["age_n"]
        np.testing.assert_allclose(age[[f"{arm}_value", f"{arm}_spread"]].astype(float),
                                   [ref["age_mean"], ref["age_sd"]], rtol=RTOL)
        size = row(table, "Service users per team (pre period)")
        np.testing.assert_allclose(size[[f"{arm}_value", f"{arm}_spread"]].astype(float),
                                   [ref["size_mean"], ref["size_sd"]], rtol=RTOL)
        beds = row(table, "Bed days")
        np.testing.assert_allclose(beds[[f"{arm}_value", f"{arm}_spread"]].astype(float),
                                   [ref["bed_days_mean"], ref["bed_days_sd"]], rtol=RTOL)
        for label, key in (("Sex: female", "female"), ("Sex: male", "male"),
                           ("Admitted", "admitted"), ("Readmitted", "readmitted")):
            assert row(table, label)[f"{arm}_value"] == ref[key], (label, arm)
        readmitted = row(table, "Readmitted")
        assert readmitted[f"{arm}_spread"] == pytest.approx(
            ref["readmitted"] / ref["readmitted_n"], rel=RTOL)


def test_baseline_fidelity_rows_match_r() -> None:
    table = baseline(TRIAL, scores=scores())
    for arm in ARMS:
        ref = REF["fidelity_by_arm"][f"baseline/{arm}"]
        for label, key in (("Fidelity total at baseline", "total"),
                           ("Mean item score at baseline", "mean_item")):
            got = row(table, label)
            assert got[f"{arm}_n"] == ref[key]["n"]
            np.testing.assert_allclose(got[[f"{arm}_value", f"{arm}_spread"]].astype(float),
                                       [ref[key]["mean"], ref[key]["sd"]], rtol=RTOL)


def test_fidelity_by_arm_matches_r() -> None:
    table = fidelity_by_arm(scores(), TRIAL.teams)
    data = table.data
    labels = {"total": "Total", "mean_item": "Mean item score",
              "referrals_access_mean": "Referrals and access (mean)",
              "content_delivery_mean": "Content and delivery of care (mean)",
              "staffing_procedures_mean": "Staffing and team procedures (mean)",
              "location_timing_mean": "Location and timing of care (mean)"}
    for key, ref in REF["fidelity_by_arm"].items():
        review, arm = key.split("/")
        here = data[data["review"] == review].set_index("label")
        for column, label in labels.items():
            stats = ref[column]
            assert here.loc[label, f"{arm}_n"] == stats["n"], (key, column)
            np.testing.assert_allclose(
                here.loc[label, [f"{arm}_value", f"{arm}_spread"]].astype(float),
                [stats["mean"], stats["sd"]], rtol=RTOL)
        for band, count in ref["bands"].items():
            assert here.loc[f"Band: {band}", f"{arm}_value"] == count, (key, band)


def test_item_change_matches_r() -> None:
    data = item_change(TRIAL.fidelity, TRIAL.teams).data.set_index("column")
    for item, ref in REF["item_change"].items():
        for arm in ARMS:
            assert data.loc[item, f"{arm}_n"] == ref[arm]["n"]
            np.testing.assert_allclose(
                data.loc[item, [f"{arm}_change", f"{arm}_change_sd"]].astype(float),
                [ref[arm]["mean"], ref[arm]["sd"]], rtol=RTOL, atol=1e-15)
        assert data.loc[item, "difference"] == pytest.approx(
            ref["intervention"]["mean"] - ref["control"]["mean"], rel=1e-12, abs=1e-15)


# -- small-number suppression -----------------------------------------------------------
def _shown_numbers(table: Table) -> set[str]:
    return {cell for cell in table.formatted().to_numpy().ravel()}


def test_suppression_hides_small_counts_and_notes_it() -> None:
    small = small_trial()
    plain = consort_flow(small)
    hidden = consort_flow(small, suppress_below=60)
    users = plain.data["unit"] == "Service users"
    assert (plain.data.loc[users, "control"] < 60).all()  # the premise: all are small
    shown = hidden.formatted()[["Control", "Intervention", "Total"]]
    # the marker never claims a size: a withheld total of 1419 must not read "<60"
    assert (shown[users.to_numpy()] == "*").all().all()
    assert hidden.data.loc[users, ["control", "intervention", "total"]].isna().all().all()
    assert any("Withheld" in note for note in hidden.footnotes)
    # teams are never withheld
    assert hidden.formatted().loc[0, "Control"] == "10"


def test_baseline_suppression_withholds_small_cells_means_and_complements() -> None:
    small = small_trial()
    admissions = small.admissions.copy()
    control = admissions["team_id"].map(TRIAL.teams.set_index("team_id")["arm"]) == "control"
    pre_control = np.flatnonzero((control & (admissions["period"] == "pre")).to_numpy())
    admissions.loc[:, "sex"] = "male"
    admissions.loc[pre_control[:3], "sex"] = "female"  # 3 of 20 control users: small
    admissions.loc[pre_control[3:6], "age"] = pd.NA  # 17 ages known: not small
    trial = SimulatedTrial(teams=TRIAL.teams, fidelity=TRIAL.fidelity, admissions=admissions,
                           service_use=TRIAL.service_use)
    plain = baseline(trial).data.set_index("label")
    assert plain.loc["Sex: female", "control_value"] == 3
    table = baseline(trial, suppress_below=8)
    data = table.data.set_index("label")
    shown = table.formatted().set_index("Characteristic")
    assert shown.loc["Sex: female", "control_summary"] == "*"
    # complementary: male (17) would reveal female as 20 - 17, so it is withheld too
    assert shown.loc["Sex: male", "control_summary"] == "*"
    assert np.isnan(data.loc["Sex: male", "control_value"])
    assert shown.loc["Sex: male", "intervention_summary"] == "30 (100.0%)"
    assert shown.loc["Sex: female", "intervention_summary"] == "0 (0.0%)"  # zero is shown
    assert shown.loc["Age, years", "control_n"] == "17"  # missing ages show in N
    assert any(note.startswith("* Withheld") and "1 to 7" in note for note in table.footnotes)
    for cell in _shown_numbers(table):
        if cell.isdigit():  # no bare count from 1 to 7 (teams per arm are 10 and 15)
            assert int(cell) == 0 or int(cell) >= 8


@given(threshold=st.integers(2, 40))
@settings(max_examples=15)
def test_no_person_count_below_threshold_is_ever_shown(threshold: int) -> None:
    table = baseline(SMALL, suppress_below=threshold)
    data = table.data
    people = data["level"] == "Service users (pre period)"
    for arm in ARMS:
        counts = data.loc[people & data["statistic"].isin(["n", "n_percent"]),
                          f"{arm}_value"].dropna()
        assert not ((counts > 0) & (counts < threshold)).any()
        ns = data.loc[people, f"{arm}_n"].dropna()
        assert not ((ns > 0) & (ns < threshold)).any()



def test_person_identifiers_never_reach_a_table() -> None:
    ids = set(TRIAL.admissions["person_id"].astype(str))
    for name, build in BUILDERS.items():
        table = build()
        assert "person_id" not in table.data.columns, name
        assert not ids & _shown_numbers(table), name


def test_suppress_below_is_checked() -> None:
    for bad in (-1, 2.5, True, "5"):
        with pytest.raises(InvalidParameterError, match="suppress_below"):
            consort_flow(TRIAL, suppress_below=bad)  # type: ignore[arg-type]
    # 0 and 1 withhold nothing (counts from 1 to 0): the same as None
    plain = baseline(SMALL).to_markdown()
    assert baseline(SMALL, suppress_below=0).to_markdown() == plain
    assert baseline(SMALL, suppress_below=1).to_markdown() == plain
    assert " 3 (15.0%) |" in plain  # the smallest service-user count is 3 ...
    assert baseline(SMALL, suppress_below=3).to_markdown() == plain  # 3 is not below 3
    assert "1 to 3 service users" in baseline(SMALL, suppress_below=4).to_markdown()  # the 3
    assert baseline(SMALL, suppress_below=8).to_markdown() != plain


# -- effects ----------------------------------------------------------------------------
def test_effects_groups_by_outcome_and_formats() -> None:
    table = effects(effects_frame())
    assert table.data["outcome"].tolist() == ["fidelity total", "fidelity total", "admitted",
                                              "bed days"]
    shown = table.formatted()
    assert shown.loc[0, "Estimate (95% CI)"] == "9.83 (2.10 to 17.57)"
    assert shown.loc[1, "p"] == "< 0.001"
    assert shown.loc[2, "Estimate (95% CI)"] == "0.70 (0.50 to 0.99)"
    assert shown.loc[2, "ICC (95% CI)"] == "0.05"  # ICC without interval
    assert shown.loc[3, "df"] == "inf"


def test_effects_footnotes_follow_the_rows() -> None:
    differences = effects(effects_frame().iloc[[0, 2]]).footnotes
    assert len(differences) == 2 and differences[0].startswith(
        "CI: confidence interval; ICC: intra-cluster correlation, from the row's own model")
    assert differences[1].startswith("Measure: conditional = within a team")  # estimands
    unstated = effects_frame().iloc[[0, 2]].drop(columns=["population", "measure",
                                                           "conditioning"])
    assert len(effects(unstated).footnotes) == 1  # no estimand columns, no Measure note
    everything = effects(effects_frame()).footnotes
    assert any("exponentiated" in n for n in everything)
    assert any("df inf" in n for n in everything)


def test_effects_accepts_analysis_results_and_several_frames() -> None:
    frame = effects_frame()
    table = effects(AnalysisResult(effects=frame.iloc[:2]), frame.iloc[2:])
    assert len(table.data) == 4


def test_effects_refuses_unexponentiated_ratios_and_bad_frames() -> None:
    frame = effects_frame()
    frame.loc[1, ["estimate", "conf_low", "conf_high"]] = np.log([0.7, 0.5, 0.98])
    with pytest.raises(InvalidParameterError, match="must be exponentiated"):
        effects(frame)
    with pytest.raises(SchemaValidationError, match="effects #1"):
        effects(effects_frame().drop(columns=["icc"]))
    with pytest.raises(InvalidParameterError, match="beyond EFFECT_COLUMNS"):
        effects(effects_frame().assign(extra=1))
    bad = effects_frame()
    bad.loc[0, "estimate"] = 30.0
    with pytest.raises(InvalidParameterError, match="outside its interval"):
        effects(bad)
    with pytest.raises(InvalidParameterError, match="at least one"):
        effects()


# -- options and inputs -----------------------------------------------------------------
def test_item_change_checks_reviews() -> None:
    with pytest.raises(InvalidParameterError, match="to_review must come after"):
        item_change(TRIAL.fidelity, TRIAL.teams, from_review="12m", to_review="6m")
    with pytest.raises(InvalidParameterError, match="from_review must be one of"):
        item_change(TRIAL.fidelity, TRIAL.teams, from_review="start")  # type: ignore[arg-type]
    six = item_change(TRIAL.fidelity, TRIAL.teams, to_review="6m").data
    assert six["control_n"].max() == 9  # one control team has no 6-month review


def test_fidelity_by_arm_options_and_inputs() -> None:
    sums = fidelity_by_arm(scores(), TRIAL.teams, domain_stat="sum").data
    assert "Referrals and access (sum)" in set(sums["label"])
    with pytest.raises(InvalidParameterError, match="domain_stat must be one of"):
        fidelity_by_arm(scores(), TRIAL.teams, domain_stat="median")  # type: ignore[arg-type]
    with pytest.raises(SchemaValidationError, match="scores"):
        fidelity_by_arm(scores().drop(columns=["band"]), TRIAL.teams)
    unknown = scores().assign(team_id="T99")
    with pytest.raises(InvalidParameterError, match="T99"):
        fidelity_by_arm(unknown, TRIAL.teams)
    bad_arm = TRIAL.teams.assign(arm="treatment")
    with pytest.raises(InvalidParameterError, match="teams.arm must be one of"):
        fidelity_by_arm(scores(), bad_arm)


def test_baseline_is_invariant_to_row_order() -> None:
    shuffled = SimulatedTrial(
        teams=TRIAL.teams.sample(frac=1.0, random_state=1),
        fidelity=TRIAL.fidelity.sample(frac=1.0, random_state=2),
        admissions=TRIAL.admissions.sample(frac=1.0, random_state=3),
        service_use=TRIAL.service_use,
        user_questionnaires=TRIAL.user_questionnaires.sample(frac=1.0, random_state=4),
        staff_questionnaires=TRIAL.staff_questionnaires.sample(frac=1.0, random_state=5),
    )
    assert baseline(shuffled).to_markdown() == baseline(TRIAL).to_markdown()
    assert consort_flow(shuffled).to_markdown() == consort_flow(TRIAL).to_markdown()


def test_consort_flow_without_admissions_uses_service_use() -> None:
    trial = SimulatedTrial(teams=TRIAL.teams, fidelity=TRIAL.fidelity,
                           admissions=None,  # type: ignore[arg-type]
                           service_use=TRIAL.service_use)
    data = consort_flow(trial).data
    users = data[data["unit"] == "Service users"]
    expected = TRIAL.service_use.merge(TRIAL.teams, on="team_id")
    pre = expected[expected["period"] == "pre"].groupby("arm")["n_users"].sum()
    assert users.iloc[0]["control"] == pre["control"]
    assert users.iloc[0]["stage"] == "in the pre period (team totals)"


def test_builders_accept_trial_data_from_load_trial() -> None:
    from crtstats import load_trial

    trial = load_trial(**TRIAL.tables())
    assert consort_flow(trial).to_markdown() == consort_flow(TRIAL).to_markdown()
    assert baseline(trial, suppress_below=8).to_markdown() == baseline(
        TRIAL, suppress_below=8).to_markdown()


def test_labels_fall_back_to_keys_without_a_scale_key() -> None:
    from crtstats.tables._common import scale_labels

    labels = scale_labels("no_such_scale")
    assert labels.domain_label("referrals_access") == "Referrals access"
    assert labels.item("item_07") == (7, "")
    assert scale_labels().domain_label("referrals_access") == "Referrals and access"
    assert scale_labels().item("item_07") == (7, "early discharge")


def test_builders_need_a_trial_with_teams() -> None:
    with pytest.raises(InvalidParameterError, match="teams DataFrame"):
        consort_flow(object())


if __name__ == "__main__":  # pragma: no cover - rewrites golden files by hand
    regenerate()

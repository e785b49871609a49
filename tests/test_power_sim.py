"""Power by simulation of the planned analysis: designs, simulated trials, simulate()."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from crtstats import load_trial
from crtstats.cli import main
from crtstats.exceptions import InvalidParameterError, PlanError
from crtstats.plots import power_curve
from crtstats.power import (
    SUMMARY_COLUMNS,
    BinaryDesign,
    FidelityDesign,
    TrialDesign,
    continuous,
    simulate,
    simulate_tables,
)
from crtstats.power._trials import cluster_sizes, draw_trial, tables_from_draws
from crtstats.runner import parse_plan
from crtstats.scales import score_fidelity

# -- the design ------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"intervention": 1}, "intervention must be a whole number of at least 2; got 1"),
    ({"strata": 20}, "strata must leave at least two teams in each stratum"),
    ({"cluster_sizes": (10, 20)}, "cluster_sizes must give one size per team"),
    ({"cluster_size_cv": 0.05, "cluster_size_law": "negative-binomial"},
     "cluster_size_cv must exceed 1 / sqrt"),
    ({"cluster_size_law": "poisson"}, "cluster_size_law must be one of"),
    ({"attrition": 1.0}, r"attrition must be in \[0.0, 1.0\); got 1.0"),
    ({"admitted": None, "fidelity": None}, "the design simulates no outcome"),
    ({"admitted": None, "readmitted": BinaryDesign()}, "readmitted needs admitted"),
])
def test_design_refuses_bad_values_naming_the_key(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        TrialDesign(**kwargs)  # type: ignore[arg-type]


def test_outcome_designs_name_their_keys() -> None:
    with pytest.raises(InvalidParameterError, match=r"fidelity.icc must be in \[0.0, 1.0\)"):
        FidelityDesign(icc=1.0)
    with pytest.raises(InvalidParameterError, match="fidelity.effect names review"):
        FidelityDesign(effect={"24m": 3.0})
    with pytest.raises(InvalidParameterError, match="odds_ratio must be in"):
        BinaryDesign(odds_ratio=0.0)


def test_plan_design_errors_are_plan_errors_under_design() -> None:
    base = {"seed": 1, "data": {"example": True}}
    with pytest.raises(PlanError, match=r"\[design\].fidelity has an unknown key 'iccc'.*"
                                        r"Did you mean 'icc'"):
        parse_plan({**base, "design": {"fidelity": {"iccc": 0.2}}})
    with pytest.raises(PlanError, match=r"\[design\] admitted.risk must be in"):
        parse_plan({**base, "design": {"admitted": {"risk": 1.5}}})
    plan = parse_plan({**base, "design": {"intervention": 12, "control": 12,
                                          "cluster_sizes": [20] * 24, "fidelity": {}}})
    assert plan.design is not None and plan.design.admitted is None
    assert plan.design.cluster_sizes == (20,) * 24


# -- simulated trials ------------------------------------------------------------------------


def test_simulated_tables_pass_validation_and_score_to_the_simulated_totals() -> None:
    design = TrialDesign(strata=8, cluster_size_cv=0.45, reviews_missing=0.2, attrition=0.1)
    tables = simulate_tables(design, np.random.default_rng(7))
    trial = load_trial(teams=tables.teams, fidelity=tables.fidelity,
                       admissions=tables.admissions, service_use=tables.service_use)
    assert trial.teams["arm"].value_counts().to_dict() == {"intervention": 15, "control": 10}
    items = [f"item_{k:02d}" for k in range(1, 40)]
    scores = score_fidelity(tables.fidelity)
    assert (scores["total"].to_numpy() == tables.fidelity[items].sum(axis=1).to_numpy()).all()
    # allocation within strata: each of the 8 strata has 3 or 4 teams, both arms in each
    per = tables.teams.groupby("stratum")["arm"].agg(lambda a: (a == "intervention").sum())
    sizes = tables.teams.groupby("stratum").size()
    assert set(sizes) == {3, 4} and (per >= 1).all() and (per < sizes).all()


def _digest(tables: object) -> str:
    h = hashlib.sha256()
    for name in ("teams", "fidelity", "admissions", "service_use"):
        frame = getattr(tables, name)
        h.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
        h.update(",".join(frame.columns).encode())
        h.update(str(list(frame.dtypes)).encode())
    return h.hexdigest()


@pytest.mark.parametrize(("design", "expected"), [
    (TrialDesign(strata=8, cluster_size_cv=0.45, reviews_missing=0.2, attrition=0.1,
                 readmitted=BinaryDesign(risk=0.2, odds_ratio=0.8)),
     "847c57dc7d4dfd5e9117817e40d8dcc83296c111884796a11264b3baf7efeee7"),
    (TrialDesign(strata=3, cluster_size_cv=0.6, cluster_size_law="negative-binomial"),
     "3bca8dded82c68c3c46155fe3ae292bdc9f6d4ce522f7a34b0b0a0808155b40e"),
])
def test_simulated_tables_are_pinned(design: TrialDesign, expected: str) -> None:
    # the tables of seed 1, byte for byte (values, columns and dtypes): the order of the
    # random draws is part of the reproducibility promise
    tables = simulate_tables(design, np.random.default_rng(1))
    assert _digest(tables) == expected
    draws = draw_trial(design, np.random.default_rng(1))
    assert _digest(tables_from_draws(design, draws)) == expected


@pytest.mark.parametrize("law", ["gamma", "negative-binomial"])
def test_cluster_sizes_have_the_designed_mean_and_cv(law: str) -> None:
    design = TrialDesign(intervention=1000, control=1000, mean_cluster_size=60.0,
                         cluster_size_cv=0.5, cluster_size_law=law)  # type: ignore[arg-type]
    sizes = cluster_sizes(design, np.random.default_rng(3)).astype(float)
    # 2,000 draws: the SE of the mean is 60 x 0.5 / sqrt(2000) = 0.67, of the CV about 0.01
    assert abs(sizes.mean() - 60.0) < 3 * 0.67
    assert abs(sizes.std() / sizes.mean() - 0.5) < 0.04


def test_fidelity_totals_have_the_designed_variance_components() -> None:
    f = FidelityDesign(mean=110.0, sd=12.0, icc=0.6, effect={"12m": 0.0})
    design = TrialDesign(intervention=300, control=300, admitted=None, fidelity=f)
    scores = score_fidelity(simulate_tables(design, np.random.default_rng(5)).fidelity)
    wide = scores.pivot(index="team_id", columns="review", values="total")
    # 600 teams: the SE of an SD of 12 is about 0.35, of a correlation of 0.6 about 0.03
    assert abs(wide["12m"].std() - 12.0) < 1.5
    assert abs(wide["baseline"].corr(wide["12m"]) - 0.6) < 0.1


# -- simulate() ------------------------------------------------------------------------------

def _two_arm_plan(sims_seed: int = 2) -> object:
    effect = 0.3 / math.sqrt(0.05 + 0.95 / 20)  # 0.3 SD of people -> SD units of team means
    design = {"intervention": 12, "control": 12,
              "fidelity": {"sd": 10.0, "icc": 0.5, "effect": {"12m": 10.0 * effect}}}
    return parse_plan({
        "seed": sims_seed, "data": {"example": True}, "design": design,
        "analysis": [{"name": "ttest", "fitter": "ols", "role": "primary", "data": "scores",
                      "where": {"review": "12m"}, "formula": "total ~ arm",
                      "term": "arm[T.intervention]", "options": {"cov_type": "classical"}}],
        "output": {"tables": [], "figures": []}})


def test_simulated_power_agrees_with_the_closed_form() -> None:
    # 12 teams per arm of 20 people, ICC 0.05, effect 0.3 SD: the team means have SD
    # sqrt(0.05 + 0.95 / 20) = 0.312, so the effect is 0.961 of them, analysed by the
    # t test of team means on 22 df. The simulation draws team means directly (the
    # fidelity total of each team), so the closed form holds exactly for it.
    d = 0.3 / math.sqrt(0.05 + 0.95 / 20)
    ncp, crit = d * math.sqrt(12 / 2), stats.t.ppf(0.975, 22)
    closed = stats.nct.sf(crit, 22, ncp) + stats.nct.cdf(-crit, 22, ncp)
    assert closed == pytest.approx(0.61, abs=0.01)  # the issue prints "about 0.61"
    # the closed form of crtstats.power agrees (strict: both tails, as above; same t on
    # 22 df; 1e-9 allows the noncentral t's own numerical error)
    formula = continuous(clusters_per_arm=12, cluster_size=20, effect=0.3, icc=0.05,
                         strict=True)
    assert formula.power == pytest.approx(closed, abs=1e-9)
    res = simulate(_two_arm_plan(), sims=150)  # type: ignore[arg-type]
    row = res.summary[res.summary["factor"] == 1.0].iloc[0]
    # Monte Carlo error: 3 SEs of a proportion near 0.61 from 150 trials (0.04 each);
    # whole-number rounding of the totals (variance 1/12 beside 100) is negligible
    assert abs(row["power"] - closed) < 3 * math.sqrt(closed * (1 - closed) / 150)
    assert abs(row["type1_error"] - 0.05) < 3 * math.sqrt(0.05 * 0.95 / 150)
    assert row["coverage"] > 0.85 and row["n_sims"] == 150 and row["n_failed"] == 0
    assert list(res.summary.columns) == list(SUMMARY_COLUMNS)


def test_type_one_error_of_the_default_fidelity_analyses_at_25_teams() -> None:
    # A smoke test (60 null trials; 0-9 rejections is the 99.9% range of a 5% test):
    # benchmarks/bench_power.py checks the 4-6% band with 2,000 trials per analysis.
    design = TrialDesign(strata=8, admitted=None, seed=4)
    res = simulate(design, sims=60, effect_grid=[])  # the null only
    null = res.summary[res.summary["factor"] == 0.0]
    assert set(null["analysis"]) == {"LMM arm x review (KR)", "ANCOVA 12m (CR2)"}
    assert (null["n_sims"] == 60).all()
    assert ((null["power"] * 60).round() <= 9).all()
    assert (null["coverage"] >= 0.85).all()


def _small() -> TrialDesign:
    return TrialDesign(intervention=4, control=4, strata=2, mean_cluster_size=15.0,
                       admitted=BinaryDesign(risk=0.3, odds_ratio=0.5), seed=9)


def test_results_do_not_depend_on_the_number_of_workers() -> None:
    one = simulate(_small(), sims=3, effect_grid=[0.5, 1.0])
    two = simulate(_small(), sims=3, effect_grid=[0.5, 1.0], workers=2)
    pd.testing.assert_frame_equal(one.trials, two.trials)
    pd.testing.assert_frame_equal(one.summary, two.summary)
    assert one.factors == (0.0, 0.5, 1.0)


def test_dask_cluster_gives_the_single_process_results() -> None:
    distributed = pytest.importorskip("dask.distributed")
    one = simulate(_small(), sims=3)
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=1,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        on_dask = simulate(_small(), sims=3, scheduler=client)
    pd.testing.assert_frame_equal(one.trials, on_dask.trials)
    pd.testing.assert_frame_equal(one.summary, on_dask.summary)


def test_simulate_refuses_bad_arguments() -> None:
    with pytest.raises(InvalidParameterError, match="sims must be a whole number"):
        simulate(_small(), sims=0)
    with pytest.raises(InvalidParameterError, match="effect_grid must hold finite numbers"):
        simulate(_small(), sims=1, effect_grid=[float("nan")])
    with pytest.raises(InvalidParameterError, match="analyses names"):
        simulate(_small(), sims=1, analyses=["nope"])
    with pytest.raises(PlanError, match="has no \\[design\\] table"):
        simulate(parse_plan({"seed": 1, "data": {"example": True}}), sims=1)


def test_cli_writes_the_power_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                     ) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        'seed = 3\n[data]\nexample = true\n'
        '[[analysis]]\nname = "fidelity"\noutcome = "fidelity"\n'
        'options = { method = "lmm", outcomes = ["total"], did = false }\n'
        '[output]\ntable_formats = ["md", "csv"]\nfigure_formats = ["png"]\n'
        '[design]\nintervention = 4\ncontrol = 4\n[design.fidelity]\n'
        'effect = { "12m" = 10 }\n', encoding="utf-8")
    out = tmp_path / "power"
    assert main(["power", str(plan), "--sims", "2", "--out", str(out)]) == 0
    assert {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} == {
        "tables/power.md", "tables/power.csv", "figures/power_curve.png",
        "power_trials.csv", "power_summary.csv", "manifest.json"}
    assert "Simulated power" in (out / "tables" / "power.md").read_text(encoding="utf-8")
    assert main(["power", str(plan), "--sims", "2", "--out", str(out)]) == 1
    assert "exists" in capsys.readouterr().err


def test_power_curve_draws_one_line_per_analysis() -> None:
    frame = pd.DataFrame({"analysis": ["A", "A", "B", "B"], "estimand": ["e"] * 4,
                          "factor": [0.0, 1.0, 0.0, 1.0], "power": [0.05, 0.8, 0.05, 0.6],
                          "power_mcse": [0.01] * 4})
    ax = power_curve(frame)
    assert len(ax.get_legend().get_texts()) == 2


def test_batched_lmm_route_equals_the_per_trial_fits() -> None:
    lmm = {"name": "lmm", "fitter": "lmm", "role": "primary", "data": "scores",
           "formula": "total ~ arm * review + stratum", "estimand": "arm effect at 12m",
           "contrast": {"arm[T.intervention]": 1, "arm[T.intervention]:review[T.12m]": 1}}
    plan = parse_plan({"seed": 3, "data": {"example": True}, "analysis": [lmm],
                       "design": {"intervention": 6, "control": 6, "strata": 3,
                                  "reviews_missing": 0.1, "fidelity": {"icc": 0.4}},
                       "output": {"tables": [], "figures": []}})
    one = simulate(plan, sims=12)
    batched = simulate(plan, sims=12, engine="batched")
    cols = ["estimate", "conf_low", "conf_high", "pvalue", "df"]
    # the same REML and KR computed from per-cluster sums grouped by cluster size
    # (BatchedLMM is tested equal to lmm to 1e-8); teams sorted by stratum and arm
    np.testing.assert_allclose(batched.trials[cols].to_numpy(float),
                               one.trials[cols].to_numpy(float), rtol=1e-8, atol=1e-8)
    labels = ["factor", "trial", "entry", "outcome", "analysis", "estimand", "scale", "error"]
    pd.testing.assert_frame_equal(batched.trials[labels], one.trials[labels])


def test_batched_lmm_route_builds_no_tables_beyond_the_first(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from crtstats.power import _engine

    lmm = {"name": "lmm", "fitter": "lmm", "role": "primary", "data": "scores",
           "formula": "total ~ arm * review + stratum", "term": "arm[T.intervention]"}
    plan = parse_plan({"seed": 5, "data": {"example": True}, "analysis": [lmm],
                       "design": {"intervention": 5, "control": 5, "strata": 2,
                                  "reviews_missing": 0.2, "fidelity": {}},
                       "output": {"tables": [], "figures": []}})
    one = simulate(plan, sims=8)
    built: list[int] = []
    real = _engine.simulate_tables

    def counting(*args: object) -> object:
        built.append(1)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(_engine, "simulate_tables", counting)
    batched = simulate(plan, sims=8, engine="batched")
    # the first trial's tables only, for the labels (none if this process has them)
    assert len(built) <= 1
    cols = ["estimate", "conf_low", "conf_high", "pvalue", "df"]
    # as test_batched_lmm_route_equals_the_per_trial_fits: BatchedLMM equals lmm to 1e-8
    np.testing.assert_allclose(batched.trials[cols].to_numpy(float),
                               one.trials[cols].to_numpy(float), rtol=1e-8, atol=1e-8)
    labels = ["factor", "trial", "entry", "outcome", "analysis", "estimand", "scale", "error"]
    pd.testing.assert_frame_equal(batched.trials[labels], one.trials[labels])


def test_batched_glmm_route_equals_the_per_trial_fits(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from crtstats.power import _engine

    design = TrialDesign(intervention=6, control=6, strata=3, mean_cluster_size=25.0,
                         cluster_size_cv=0.5, attrition=0.1, fidelity=None,
                         admitted=BinaryDesign(risk=0.3, odds_ratio=0.6, icc=0.1), seed=11)
    one = simulate(design, sims=10)
    built: list[int] = []
    real = _engine.simulate_tables

    def counting(*args: object) -> object:
        built.append(1)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(_engine, "simulate_tables", counting)
    batched = simulate(design, sims=10, engine="batched")
    assert len(built) <= 1  # the first trial's only, for the labels
    labels = ["factor", "trial", "entry", "outcome", "analysis", "estimand", "scale", "error"]
    pd.testing.assert_frame_equal(batched.trials[labels], one.trials[labels])
    assert (one.trials["error"] == "").all()
    b, o = batched.trials, one.trials
    # BatchedGLMM against glmm, as tests/test_batch_glmm.py: the same Laplace optimum to
    # within 3e-5 standard errors (glmm stops before its last Newton step), SEs to 1e-5
    # relative, p-values within 1e-5, df exactly. On the log odds ratio scale; the SE is
    # read back from the 95% limits.
    t = stats.t.ppf(0.975, o["df"].to_numpy(float))
    se = (np.log(o["conf_high"]) - np.log(o["conf_low"])).to_numpy(float) / (2 * t)
    b_se = (np.log(b["conf_high"]) - np.log(b["conf_low"])).to_numpy(float) / (2 * t)
    est = np.abs(np.log(b["estimate"]) - np.log(o["estimate"])).to_numpy(float)
    assert (est <= 3e-5 * se).all()
    np.testing.assert_allclose(b_se, se, rtol=1e-5)
    np.testing.assert_allclose(b["pvalue"].to_numpy(float), o["pvalue"].to_numpy(float),
                               rtol=0, atol=1e-5)
    np.testing.assert_array_equal(b["df"].to_numpy(float), o["df"].to_numpy(float))

"""Runs: results folder, manifest, determinism, report, atomic output, plan errors."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import crtstats
from crtstats.analysis import EFFECT_COLUMNS
from crtstats.cli._run import progress_printer
from crtstats.exceptions import ExcludedRowsWarning, PlanError, SchemaValidationError
from crtstats.runner import TIMESTAMP_FIELD, Plan, _output, load_plan, parse_plan, run
from crtstats.runner._analyses import fit_analysis
from crtstats.runner._capability import check_keywords
from crtstats.runner._stages import analysis_frames, load_inputs

ROOT = Path(__file__).resolve().parents[1]
PLAN = ROOT / "analyses" / "core_trial.toml"
TABLES = ("data_summary", "consort_flow", "baseline", "fidelity_by_arm", "item_change",
          "effects")


def _tiny(**output: Any) -> Plan:
    """A plan that only reads, validates and summarises the example data."""
    return parse_plan({"seed": 5, "data": {"example": True},
                       "output": {"tables": ["data_summary"], "figures": [],
                                  "table_formats": ["csv"], **output}}, name="tiny.toml")


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _without_timestamp(path: Path) -> str:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith(f'  "{TIMESTAMP_FIELD}": ')]
    assert len(kept) == len(lines) - 1, "the timestamp is exactly one line"
    return "".join(kept)


# -- the shipped plan ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> crtstats.runner.RunResult:
    """The README's main command, once, through the Python API."""
    return run(PLAN, out=tmp_path_factory.mktemp("shipped") / "results")


def test_shipped_plan_writes_every_table_and_figure(shipped: Any) -> None:
    out = shipped.out
    for name in TABLES:
        for ext in ("md", "html", "tex", "csv", "docx"):
            assert (out / "tables" / f"{name}.{ext}").stat().st_size > 0, (name, ext)
    for name in ("trajectories", "domain_profile", "forest", "caterpillar",
                 "questionnaire_means"):
        assert (out / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert "<svg" in (out / "figures" / f"{name}.svg").read_text()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")], "no staging left"
    assert set(shipped.tables) == set(TABLES)
    assert all(isinstance(f, Figure) for f in shipped.figures.values())


def test_shipped_plan_effects(shipped: Any) -> None:
    effects = shipped.effects
    # the plan names its primary analysis, so every row says its outcome's role
    columns = list(EFFECT_COLUMNS)
    columns.insert(columns.index("role") + 1, "outcome_role")
    assert list(effects.columns) == columns
    assert set(effects.loc[effects["outcome_role"] == "primary", "outcome"]) == {"csq8"}
    assert effects.iloc[0]["outcome"] == "csq8" and effects.iloc[0]["role"] == "primary"
    plan = load_plan(PLAN)
    labels = {a.label for a in plan.analyses if a.fitter is not None}
    assert labels <= set(effects["analysis"])
    assert {"total", "admitted", "csq8", "ghq12_ghq", "ghq12_case", "ghq12_likert"} <= set(
        effects["outcome"])
    assert effects["outcome"].nunique() >= 4, "bed days and readmissions are reported too"
    assert set(effects["role"]) == {"primary", "secondary", "sensitivity"}
    primary = effects[effects["role"] == "primary"]
    assert not primary["outcome"].duplicated().any()  # one primary row per outcome
    for name, done in shipped.analyses.items():
        assert len(done.effects), name
        assert (effects["analysis"].isin(done.effects["analysis"])).any()
    # the table written is the one returned
    written = pd.read_csv(shipped.out / "tables" / "effects.csv")
    assert len(written) >= len(effects)
    ratio = effects["scale"].str.endswith("ratio")
    assert (effects.loc[ratio, "estimate"] > 0).all()
    interval = effects.dropna(subset=["conf_low"])
    assert ((interval["conf_low"] <= interval["estimate"])
            & (interval["estimate"] <= interval["conf_high"])).all()


def test_shipped_plan_manifest(shipped: Any) -> None:
    manifest = json.loads((shipped.out / "manifest.json").read_text())
    assert manifest == json.loads(json.dumps(shipped.manifest))
    assert manifest["plan"] == {"file": "core_trial.toml", "sha256": load_plan(PLAN).sha256,
                                "title": load_plan(PLAN).title}
    teams = crtstats.read_table(crtstats.datasets.example_paths()["teams"], table="teams")
    assert manifest["inputs"]["teams"] == {"file": "example_teams.csv", "rows": 25,
                                           "sha256": teams.sha256}
    assert manifest["data"]["validated"] is True
    assert manifest["seeds"]["plan"] == 20140301
    assert manifest["seeds"]["analyses"]["admissions"] == 20140301
    assert manifest["seeds"]["analyses"]["fidelity"] is None  # nothing random
    for name, record in manifest["analyses"].items():
        assert record["fits"] and record["effects"], name
        for item in record["fits"] + record["effects"]:
            assert item["df_method"] and item["cov_type"], (name, item)
            assert item["role"] in ("primary", "secondary", "sensitivity"), (name, item)
        # a fit is primary or sensitivity; only effect rows are secondary (other times),
        # and the questionnaire analyses' fit of the linked respondents
        linked = [f for f in record["fits"] if "linked" in f["fit"]]
        assert all(f["role"] in ("primary", "sensitivity") for f in record["fits"]
                   if f not in linked), name
        assert all(f["role"] == "secondary" for f in linked), name
    glmm = [f for f in manifest["analyses"]["admissions"]["fits"] if f["model"] == "glmm"]
    assert glmm and glmm[0]["df_method"] == "between-within"
    lmm = manifest["analyses"]["fidelity-satterthwaite"]["fits"][0]
    assert (lmm["model"], lmm["df_method"]) == ("lmm", "satterthwaite")
    assert {"python", "crtstats", "numpy", "scipy", "pandas", "formulaic"} <= set(
        manifest["versions"])
    assert manifest["versions"]["crtstats"] == crtstats.__version__
    recorded = {(w["stage"], w["category"]) for w in manifest["warnings"]}
    assert recorded == {(w.stage, w.category) for w in shipped.warnings}
    written = {path: hashlib.sha256(data).hexdigest()
               for path, data in _files(shipped.out).items()
               if path.startswith(("tables/", "figures/"))}
    assert manifest["outputs"]["files"] == written and len(written) == 6 * 5 + 6 * 2  # six figures
    assert manifest["primary"]["analysis"] == "satisfaction"
    assert {"user_questionnaires", "staff_questionnaires"} <= set(manifest["inputs"])
    text = (shipped.out / "manifest.json").read_text()
    assert str(ROOT) not in text and str(shipped.out) not in text, "no machine paths"


def test_shipped_plan_report_is_self_contained(shipped: Any) -> None:
    html = (shipped.out / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert not re.search(r"""(src|href)=["'](?!#|data:)""", html), "only inline resources"
    assert "<link" not in html and "<script" not in html
    assert "seed = 20140301" in html, "the plan as run is in the report"
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 6  # the shipped plan asks for six figures
    assert base64.b64decode(images[0])[:4] == b"\x89PNG"
    for table in shipped.tables.values():
        assert table.title in html
    for record in shipped.manifest["analyses"].values():
        for item in record["fits"] + record["effects"]:
            assert f"<td>{item['df_method']}</td>" in html, item


# -- determinism and seeds ----------------------------------------------------------------


def _seeded_plan(seed: int) -> Plan:
    return parse_plan({
        "seed": seed, "data": {"example": True},
        "analysis": [{"name": "perm", "role": "sensitivity", "fitter": "permutation_test",
                      "data": "admissions", "where": {"period": "follow_up"},
                      "options": {"outcome": "admitted", "statistic": "mean_difference",
                                  "n_resamples": 300}},
                     {"name": "cl", "role": "sensitivity", "fitter": "cluster_level",
                      "data": "admissions", "where": {"period": "follow_up"},
                      "options": {"outcome": "admitted"}}],
        "output": {"tables": ["consort_flow", "effects"], "figures": ["forest"],
                   "table_formats": ["csv", "md", "docx"]},
    }, name="seeded.toml")


@pytest.fixture(scope="module")
def seeded_runs(tmp_path_factory: pytest.TempPathFactory) -> list[crtstats.runner.RunResult]:
    base = tmp_path_factory.mktemp("seeded")
    return [run(_seeded_plan(seed), out=base / name)
            for name, seed in (("a", 11), ("b", 11), ("c", 12))]


def test_two_runs_are_byte_identical(seeded_runs: list[Any]) -> None:
    a, b, _ = (r.out for r in seeded_runs)
    assert _files(a / "tables") == _files(b / "tables")
    assert _files(a / "figures") == _files(b / "figures")
    assert _without_timestamp(a / "manifest.json") == _without_timestamp(b / "manifest.json")
    stamp = json.loads((a / "manifest.json").read_text())[TIMESTAMP_FIELD]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp)


def test_the_seed_reaches_the_permutation_test(seeded_runs: list[Any]) -> None:
    a, _, c = seeded_runs
    assert a.manifest["seeds"]["analyses"] == {"perm": 11, "cl": None}
    assert c.manifest["seeds"]["analyses"]["perm"] == 12
    draws_a = a.analyses["perm"].fits["perm"].null_distribution
    draws_c = c.analyses["perm"].fits["perm"].null_distribution
    assert not np.array_equal(draws_a, draws_c), "the Monte Carlo draws depend on the seed"
    again = seeded_runs[1].analyses["perm"].fits["perm"].null_distribution
    assert np.array_equal(draws_a, again), "and are the same for the same seed"
    assert a.analyses["perm"].fits["perm"].n_resamples == 300


# -- atomic output and --force ------------------------------------------------------------


def test_existing_folder_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "res"
    run(_tiny(), out=out)
    (out / "stale.txt").write_text("old")
    with pytest.raises(FileExistsError, match="pass --force"):
        run(_tiny(), out=out)
    assert (out / "stale.txt").is_file()
    run(_tiny(), out=out, force=True)
    assert not (out / "stale.txt").exists() and (out / "manifest.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res"]


def test_force_refuses_folders_that_are_not_results(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(FileExistsError, match="does not look like a crtstats results folder"):
        run(_tiny(), out=tmp_path / "mine", force=True)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="is a file"):
        run(_tiny(), out=tmp_path / "file", force=True)
    (tmp_path / "empty").mkdir()
    run(_tiny(), out=tmp_path / "empty", force=True)
    assert (tmp_path / "empty" / "manifest.json").is_file()


def test_force_never_replaces_a_folder_holding_the_inputs(tmp_path: Path) -> None:
    out = tmp_path / "res"
    _copy_example(out / "data")
    plan = _plan_file(out)
    (out / "manifest.json").write_text("{}")  # looks like a results folder
    with pytest.raises(FileExistsError, match="is inside the results folder"):
        run(plan, out=out, force=True)
    assert plan.is_file() and (out / "data" / "teams.csv").is_file()


def _boom(**kwargs: Any) -> str:
    raise RuntimeError("disk full")


def test_folder_that_appears_during_the_run_is_not_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "res"
    real = _output.render_report

    def render_and_meanwhile_create(**kwargs: Any) -> str:
        out.mkdir()
        (out / "other.txt").write_text("someone else's")
        return real(**kwargs)

    monkeypatch.setattr(_output, "render_report", render_and_meanwhile_create)
    with pytest.raises(FileExistsError, match="pass --force"):
        run(_tiny(), out=out)
    assert [p.name for p in out.iterdir()] == ["other.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["res"]


def test_failed_run_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_output, "render_report", _boom)
    with pytest.raises(RuntimeError, match="disk full"):
        run(_tiny(), out=tmp_path / "res")
    assert list(tmp_path.iterdir()) == []


def test_failed_forced_run_keeps_the_old_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "res"
    run(_tiny(), out=out)
    before = _files(out)
    monkeypatch.setattr(_output, "render_report", _boom)
    with pytest.raises(RuntimeError):
        run(_tiny(), out=out, force=True)
    assert _files(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["res"]


def test_failed_move_restores_the_old_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "res"
    run(_tiny(), out=out)
    before = _files(out)
    real_rename = Path.rename

    def rename(self: Path, target: Any) -> Any:
        if ".res-partial-" in self.name:
            raise OSError("rename failed")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(OSError, match="rename failed"):
        run(_tiny(), out=out, force=True)
    assert _files(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["res"]


def test_suppression_threshold_reaches_the_tables(tmp_path: Path) -> None:
    plain = run(_tiny(tables=["consort_flow"]), out=tmp_path / "plain")
    withheld = run(_tiny(tables=["consort_flow"], suppress_below=100000), out=tmp_path / "w")
    assert not plain.tables["consort_flow"].suppressed
    assert withheld.tables["consort_flow"].suppressed
    assert withheld.manifest["outputs"]["suppress_below"] == 100000


def test_table_formats_are_the_plans(tmp_path: Path) -> None:
    result = run(_tiny(table_formats=["md", "docx"]), out=tmp_path / "r")
    names = sorted(p.name for p in (tmp_path / "r" / "tables").iterdir())
    assert names == ["data_summary.docx", "data_summary.md"]
    assert result.manifest["outputs"]["table_formats"] == ["md", "docx"]


# -- the data: files, column mapping, validation ------------------------------------------


def _copy_example(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, path in crtstats.datasets.example_paths().items():
        if name in ("teams", "admissions"):
            paths[name] = Path(shutil.copy(path, folder / f"{name}.csv"))
    return paths


def _plan_file(folder: Path, extra: str = "") -> Path:
    plan = folder / "plan.toml"
    plan.write_text(
        'seed = 1\n[data]\nteams = "data/teams.csv"\nadmissions = "data/admissions.csv"\n'
        f'{extra}\n[output]\ntables = ["data_summary", "consort_flow"]\nfigures = []\n'
        'table_formats = ["csv"]\n'
    )
    return plan


def test_files_and_column_mapping(tmp_path: Path) -> None:
    paths = _copy_example(tmp_path / "data")
    teams = pd.read_csv(paths["teams"], dtype=str).rename(columns={"arm": "Allocation"})
    teams.to_csv(paths["teams"], index=False)
    plan = _plan_file(tmp_path, '[data.columns.teams]\n"Allocation" = "arm"\n')
    result = run(plan, out=tmp_path / "out")
    inputs = result.manifest["inputs"]
    assert sorted(inputs) == ["admissions", "teams"]
    assert inputs["teams"]["column_mapping"] == {"Allocation": "arm"}
    assert inputs["teams"]["file"] == "teams.csv" and inputs["teams"]["rows"] == 25
    assert "service_use was derived" in " ".join(result.manifest["data"]["notes"])
    assert set(result.trial.teams["arm"]) == {"intervention", "control"}


def test_invalid_data_stops_before_writing(tmp_path: Path) -> None:
    paths = _copy_example(tmp_path / "data")
    teams = pd.read_csv(paths["teams"], dtype=str)
    teams.loc[1, "arm"] = "placebo"
    teams.to_csv(paths["teams"], index=False)
    with pytest.raises(SchemaValidationError) as err:
        run(_plan_file(tmp_path), out=tmp_path / "out")
    cases = err.value.failure_cases
    assert "placebo" in set(cases["value"].astype(str))
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "plan.toml"]


def test_missing_data_file(tmp_path: Path) -> None:
    with pytest.raises(crtstats.DataFileError, match="teams.csv"):
        run(_plan_file(tmp_path), out=tmp_path / "out")


# -- plan entries that fail against the data ----------------------------------------------


_OLS = {"fitter": "ols", "data": "scores", "formula": "total ~ arm + stratum",
        "where": {"review": "12m"}}
_ANCOVA = {"fitter": "ols", "data": "change", "formula": "total_to ~ arm + total_from + stratum"}


@pytest.fixture(scope="module")
def frames() -> dict[str, Any]:
    plan = parse_plan({"seed": 3, "data": {"example": True},
                       "analysis": [{"name": "a", "role": "primary", **_ANCOVA}]})
    inputs = load_inputs(plan)
    scores = crtstats.score_fidelity(inputs.tables["fidelity"])
    return {"frames": analysis_frames(inputs, scores, plan=plan),
            "inputs": {"trial": inputs.trial, "scores": scores, "teams": inputs.tables["teams"]}}


def _fit(frames: Mapping[str, Any], **entry: Any) -> Any:
    spec = parse_plan({"seed": 3, "data": {"example": True}, "analysis": [
        {"name": "a", "role": "sensitivity", **entry}]}).analyses[0]
    return fit_analysis(spec, frames=frames["frames"], inputs=frames["inputs"], seed=3)


def test_frames_have_time_ordered_factors(frames: dict[str, Any]) -> None:
    scores = frames["frames"]["scores"]
    assert list(scores["review"].cat.categories) == ["baseline", "6m", "12m"]
    assert {"arm", "stratum"} <= set(scores.columns)
    service = frames["frames"]["service_use"]
    assert (service["log_n_users"] > 0).all()
    assert list(service["period"].cat.categories) == ["pre", "follow_up"]


def test_model_entry_matches_calling_the_fitter(frames: dict[str, Any]) -> None:
    done = _fit(frames, **_OLS)
    scores = frames["frames"]["scores"]
    direct = crtstats.ols("total ~ arm + stratum", scores[scores["review"] == "12m"],
                          cluster="team_id")
    row = done.effects.iloc[0]
    ci = direct.conf_int().loc["arm[T.intervention]"]
    assert row["estimate"] == direct.params["arm[T.intervention]"]
    assert (row["conf_low"], row["conf_high"]) == (ci.iloc[0], ci.iloc[1])
    assert row["df_method"] == direct.df_method and row["cov_type"] == direct.cov_type
    assert row["estimand"] == "intervention vs control" and row["outcome"] == "total"
    assert (row["nobs"], row["n_clusters"]) == (direct.nobs, direct.n_clusters)
    assert done.notes[0] == "25 row(s) of scores with review = '12m'."


def test_change_frame_ancova_is_the_fidelity_analysis_ancova(frames: dict[str, Any]) -> None:
    """Two routes to the team-level ANCOVA (a plan formula, analyse_fidelity) agree."""
    row = _fit(frames, **_ANCOVA).effects.iloc[0]
    named = crtstats.analyse_fidelity(frames["inputs"]["scores"], frames["inputs"]["teams"],
                                      method="lmm", outcomes=["total"], did=False).effects
    (ancova,) = [r for _, r in named.iterrows() if r["role"] == "sensitivity"]
    for column in ("estimate", "conf_low", "conf_high", "pvalue", "df"):
        assert row[column] == pytest.approx(ancova[column], rel=1e-10), column
    assert (row["nobs"], row["df_method"]) == (ancova["nobs"], ancova["df_method"])


def test_contrast_entry(frames: dict[str, Any]) -> None:
    weights = {"arm[T.intervention]": 1, "arm[T.intervention]:review[T.12m]": 1}
    done = _fit(frames, fitter="lmm", data="scores", formula="total ~ arm * review",
                contrast=weights, estimand="arm at 12m")
    with pytest.warns(ExcludedRowsWarning):  # four reviews lack a total
        direct = crtstats.lmm("total ~ arm * review", frames["frames"]["scores"],
                              cluster="team_id").contrast(weights)
    row = done.effects.iloc[0]
    assert row["estimand"] == "arm at 12m"
    assert row["estimate"] == pytest.approx(direct.estimate, rel=1e-12)
    assert row["df"] == pytest.approx(direct.df, rel=1e-12)


def test_ratio_scale_is_exponentiated(frames: dict[str, Any]) -> None:
    done = _fit(frames, fitter="gee", data="admissions", formula="admitted ~ arm",
                where={"period": "follow_up"}, options={"family": "binomial"})
    fit = done.fits["a"]
    row = done.effects.iloc[0]
    assert row["scale"] == "odds ratio"
    assert row["estimate"] == pytest.approx(math.exp(fit.params["arm[T.intervention]"]),
                                            rel=1e-12)
    low, high = fit.conf_int().loc["arm[T.intervention]"]
    assert (row["conf_low"], row["conf_high"]) == pytest.approx((math.exp(low), math.exp(high)))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({**_OLS, "formula": "total ~ arm + trust"}, r"column\(s\) \['trust'\]"),
        ({**_OLS, "where": {"visit": "12m"}}, "where.visit names a column"),
        ({**_OLS, "where": {"review": "24m"}}, "matches no rows"),
        ({**_OLS, "term": "arm[T.control]"}, "does not have; it has: Intercept"),
        ({**_OLS, "formula": "total ~ stratum"}, "say which coefficient is the estimand"),
        ({**_OLS, "options": {"cov": "CR2"}}, r"options \['cov'\] are not options"),
        ({"fitter": "cluster_level", "data": "admissions",
          "options": {"outcome": "admited"}}, r"\['admited'\]"),
    ],
)
def test_entries_that_do_not_fit_the_data(
    frames: dict[str, Any], entry: dict[str, Any], message: str,
) -> None:
    with pytest.raises(PlanError, match=message):
        _fit(frames, **entry)


def test_fitter_errors_name_the_plan_entry(frames: dict[str, Any]) -> None:
    with pytest.raises(crtstats.InvalidParameterError, match=r"^\[\[analysis\]\] 'a': .*CR9"):
        _fit(frames, **_OLS, options={"cov_type": "CR9"})
    with pytest.raises(crtstats.ModelSpecificationError, match=r"^\[\[analysis\]\] 'a': "):
        _fit(frames, fitter="gee", data="admissions", formula="bed_days ~ arm",
             options={"family": "binomial"})


def test_warnings_are_recorded_not_raised(frames: dict[str, Any]) -> None:
    done = _fit(frames, fitter="lmm", data="admissions", formula="age ~ arm + stratum",
                where={"period": "follow_up"})
    # the example's ages are drawn without a team effect: the fit is on the boundary
    assert "BoundaryFitWarning" in [w.category for w in done.warnings]
    assert {w.stage for w in done.warnings} == {"a"}


# -- capabilities, progress, the public name ----------------------------------------------


def test_check_keywords() -> None:
    def fitter(formula: str, data: Any, *, cluster: str, ddf: str = "kr") -> None:
        """A stand-in signature."""

    check_keywords(fitter, {"ddf": "kr"}, wanted_by="x")
    with pytest.raises(PlanError, match=r"options \['dff'\] are not options.*takes: .*ddf"):
        check_keywords(fitter, {"dff": "kr"}, wanted_by="x")


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_progress_only_on_a_terminal_outside_ci() -> None:
    assert progress_printer(_Stream(tty=False), {}) is None
    assert progress_printer(_Stream(tty=True), {"CI": "true"}) is None
    stream = _Stream(tty=True)
    show = progress_printer(stream, {})
    assert show is not None
    show("fitting lmm")
    assert stream.getvalue() == "crtstats: fitting lmm ...\n"


def test_progress_messages_name_the_stages(tmp_path: Path) -> None:
    seen: list[str] = []
    run(_tiny(), out=tmp_path / "r", progress=seen.append)
    assert seen[0] == "reading and validating the data"
    assert seen[-1].startswith("writing ")


def test_run_is_exported() -> None:
    assert crtstats.run is run


def test_row_order_of_the_files_does_not_change_the_effects(tmp_path: Path) -> None:
    """Shuffling the rows of every input file leaves every effect as it was.

    Tolerance: the fits are iterative (REML, Laplace), and summing the same numbers in
    another order moves the optimum in the last digits; 1e-6 relative is far below
    any reported digit and far above that noise.
    """
    plan_text = (
        'seed = 4\n[data]\nteams = "teams.csv"\nfidelity = "fidelity.csv"\n'
        'admissions = "admissions.csv"\n'
        '[[analysis]]\nname = "fidelity"\noutcome = "fidelity"\n'
        'options = { outcomes = ["total"] }\n'
        '[[analysis]]\nname = "glmm"\nrole = "primary"\nfitter = "glmm"\n'
        'data = "admissions"\nformula = "admitted ~ arm + stratum"\n'
        'where = { period = "follow_up" }\n'
        '[output]\ntables = ["effects"]\nfigures = []\ntable_formats = ["csv"]\n'
    )
    effects = []
    for shuffle in (False, True):
        folder = tmp_path / ("shuffled" if shuffle else "original")
        folder.mkdir()
        for name in ("teams", "fidelity", "admissions"):
            frame = pd.read_csv(crtstats.datasets.example_paths()[name], dtype=str,
                                keep_default_na=False)
            if shuffle:
                frame = frame.sample(frac=1.0, random_state=7)
            frame.to_csv(folder / f"{name}.csv", index=False)
        (folder / "plan.toml").write_text(plan_text)
        effects.append(run(folder / "plan.toml", out=folder / "out").effects)
    original, shuffled = effects
    assert len(original) == 6  # LMM at 6m and 12m, ANCOVA, DiD at 6m and 12m, GLMM
    pd.testing.assert_frame_equal(original, shuffled, check_exact=False, rtol=1e-6)


def test_the_run_forest_draws_each_outcome_on_its_primary_scale() -> None:
    """The same effect on three scales would triple its panels: one scale per outcome."""
    from matplotlib.figure import Figure

    from crtstats.runner._products import _forest

    base = {"analysis": "a", "estimand": "e", "estimate": 0.5, "conf_low": 0.2,
            "conf_high": 0.9, "pvalue": 0.1, "df": 20.0, "df_method": "residual",
            "cov_type": "classical", "icc": np.nan, "icc_low": np.nan, "icc_high": np.nan,
            "n_clusters": 25, "nobs": 100}
    effects = pd.DataFrame([
        {**base, "outcome": "admitted", "role": "primary", "scale": "odds ratio"},
        {**base, "outcome": "admitted", "role": "sensitivity", "scale": "odds ratio"},
        {**base, "outcome": "admitted", "role": "sensitivity", "scale": "risk difference",
         "estimate": -0.1, "conf_low": -0.2, "conf_high": 0.0},
        {**base, "outcome": "other", "role": "sensitivity", "scale": "difference"},
        {**base, "outcome": "other", "role": "sensitivity", "scale": "rate ratio"},
    ])
    figure = Figure()
    _forest(lambda *a, **k: None, effects, figure)  # type: ignore[arg-type, return-value]
    titles = [ax.get_title(loc="left") or ax.get_title() for ax in figure.axes]
    assert len(figure.axes) == 3, titles  # admitted: odds ratio only; other: both scales
    assert not any("risk difference" in t for t in titles)

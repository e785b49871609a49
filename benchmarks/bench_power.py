"""Speed and validity of crtstats.power.simulate on the CORE-sized design.

Run from the project folder::

    python benchmarks/bench_power.py [--lmm N] [--glmm N] [--workers W] [--r] [--validity N]
        [--targets [--only lmm|glmm] [--repeats R]]

Speed (the design of ``benchmarks/bench_power.R``): 25 teams (15 intervention, 10
control), one stratum.

(1) Fidelity: 3 reviews, ICC 0.3 of a total with SD 15, effect 10 points at 6 and 12
    months; each trial is simulated through the data model (teams and fidelity tables
    with item scores) and analysed by the plan entry ``lmm`` of ``total ~ arm * review``
    (REML, Kenward-Roger), arm effect at 12 months: once per trial (``engine="tables"``,
    each trial scored and fitted by ``lmm``) and batched (``engine="batched"``, the same
    trials fitted by ``BatchedLMM``). ``--lmm`` trials in all (half under the null, half
    under the effect). Default 10,000.
(2) Admissions: about 60 service users per team (gamma sizes, CV 0.13, as Poisson(60)),
    risk 0.30, odds ratio 0.7, team SD 0.5 on the logit scale; ``glmm`` of ``admitted ~
    arm`` on the follow-up users (Laplace, between-within df). ``--glmm`` trials, default
    1,000.

When ``crtstats.models`` has ``BatchedLMM`` / ``BatchedGLMM`` the script also times them
on one fixed allocation: the outcome vectors of all trials are simulated at once and
fitted as one batch (the per-trial route above re-randomises and rebuilds every table).
``--r`` runs ``Rscript benchmarks/bench_power.R`` (a plain lmer + pbkrtest and glmer
loop on the same design) for the comparison, when R is installed.

``--targets`` instead times the two speed targets of the batched route through
``simulate(..., engine="batched", workers=W)`` on the design of
``analyses/core_power.toml`` (25 teams, 15 and 10, in 8 strata; gamma caseloads of mean
60, CV 0.45; 5% attrition; 3% of 6- and 12-month reviews missed): (a) the LMM of
``total ~ arm * review + stratum`` (REML, Kenward-Roger) arm effect at 12 months,
``--lmm`` simulated trials per scenario, as shipped and with no review missed; (b) the
plan's admission GLMM (``admitted ~ arm + stratum`` on the follow-up users, Laplace,
between-within df), ``--glmm`` trials per scenario. Each is run ``--repeats`` times (new
worker processes each time; the two LMM runs alternate, so that both see the same load)
and the time of each run printed (take the median); ``simulate`` always simulates as
many trials under the null, so a run fits twice ``sims`` trials. ``--only lmm`` or
``--only glmm`` times one of the two targets.

``--validity N`` instead prints the type I error of every default analysis (the fidelity
LMM with KR and the ANCOVA with CR2, the admission GLMM) at 25 teams in 8 strata, from N
trials simulated under the null, with its Monte Carlo SE.

Prints seconds; the figures depend on the machine and on other work running on it.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import crtstats.models as models
from crtstats.power import BinaryDesign, FidelityDesign, TrialDesign, simulate
from crtstats.runner import parse_plan

HERE = Path(__file__).resolve().parent

LMM_ENTRY = {"name": "lmm", "fitter": "lmm", "role": "primary", "data": "scores",
             "formula": "total ~ arm * review", "estimand": "arm effect at 12m",
             "contrast": {"arm[T.intervention]": 1, "arm[T.intervention]:review[T.12m]": 1}}
GLMM_ENTRY = {"name": "glmm", "fitter": "glmm", "role": "primary", "data": "admissions",
              "where": {"period": "follow_up"}, "formula": "admitted ~ arm",
              "term": "arm[T.intervention]", "estimand": "odds ratio",
              "options": {"family": "binomial"}}
TEAM_SD = 0.5
ICC_LOGIT = TEAM_SD**2 / (TEAM_SD**2 + math.pi**2 / 3)


def _plan(entry: dict[str, Any], design: dict[str, Any]) -> Any:
    return parse_plan({"seed": 20140301, "data": {"example": True}, "design": design,
                       "analysis": [entry], "output": {"tables": [], "figures": []}})


def _design(fidelity: bool) -> dict[str, Any]:
    base: dict[str, Any] = {"intervention": 15, "control": 10, "mean_cluster_size": 60,
                            "cluster_size_cv": 0.13}
    if fidelity:
        return {**base, "fidelity": {"mean": 110, "sd": 15, "icc": 0.3,
                                     "effect": {"6m": 10, "12m": 10}}}
    return {**base, "admitted": {"risk": 0.3, "icc": ICC_LOGIT, "odds_ratio": 0.7}}


def time_route(entry: dict[str, Any], fidelity: bool, trials: int, workers: int,
               engine: str = "tables") -> None:
    plan = _plan(entry, _design(fidelity))
    start = time.perf_counter()
    res = simulate(plan, sims=max(1, trials // 2), workers=workers,
                   engine=engine)  # type: ignore[arg-type]
    seconds = time.perf_counter() - start
    done = 2 * max(1, trials // 2)
    row = res.summary[res.summary["factor"] == 1.0].iloc[0]
    print(f"{entry['name']} ({engine}): {done} trials through the data model in {seconds:.1f} s "
          f"({1000 * seconds / done:.1f} ms a trial, {workers} worker(s)); power "
          f"{row['power']:.3f} (MC SE {row['power_mcse']:.3f}), type I error "
          f"{row['type1_error']:.3f}, failed {int(row['n_failed'])}")


def time_batched(trials: int) -> None:
    batched = getattr(models, "BatchedLMM", None)
    if batched is None:
        print("BatchedLMM: not available in crtstats.models; batched route not timed.")
        return
    import pandas as pd

    rng = np.random.default_rng(1)
    teams = np.repeat(np.arange(25), 3)
    frame = pd.DataFrame({"team_id": [f"T{t:02d}" for t in teams],
                          "arm": np.where(teams < 15, "intervention", "control"),
                          "review": pd.Categorical(np.tile(["baseline", "6m", "12m"], 25),
                                                   ["baseline", "6m", "12m"]),
                          "total": 0.0})
    mean = 110 + 10 * ((teams < 15) & (frame["review"] != "baseline")).to_numpy()
    start = time.perf_counter()
    y = (mean[:, None] + rng.normal(0, math.sqrt(0.3) * 15, (25, trials))[teams]
         + rng.normal(0, math.sqrt(0.7) * 15, (len(frame), trials)))
    fit = batched("total ~ arm * review", frame, cluster="team_id",
                  contrast=LMM_ENTRY["contrast"]).fit(y)
    seconds = time.perf_counter() - start
    print(f"BatchedLMM: {trials} trials (one allocation) in {seconds:.2f} s; power "
          f"{np.mean(np.asarray(fit.pvalue) < 0.05):.3f}")


def time_batched_glmm(trials: int) -> None:
    batched = getattr(models, "BatchedGLMM", None)
    if batched is None:
        print("BatchedGLMM: not available in crtstats.models; batched route not timed.")
        return
    import pandas as pd

    rng = np.random.default_rng(2)
    sizes = np.maximum(1, np.rint(rng.gamma(1 / 0.13**2, 60 * 0.13**2, size=25))).astype(int)
    team = np.repeat(np.arange(25), sizes)
    frame = pd.DataFrame({"team_id": [f"T{t:02d}" for t in team],
                          "arm": np.where(team < 15, "intervention", "control")})
    start = time.perf_counter()
    eta = (math.log(0.3 / 0.7) + math.log(0.7) * (team < 15))[:, None] + rng.normal(
        0, TEAM_SD, (25, trials))[team]
    y = (rng.random(eta.shape) < 1 / (1 + np.exp(-eta))).astype(float)
    fit = batched("admitted ~ arm", frame, cluster="team_id",
                  contrast={"arm[T.intervention]": 1}).fit(y)
    seconds = time.perf_counter() - start
    print(f"BatchedGLMM: {trials} trials (one allocation, {len(frame)} users) in "
          f"{seconds:.2f} s; power {np.mean(np.asarray(fit.pvalue) < 0.05):.3f}")


def run_r(n_lmm: int, n_glmm: int) -> None:
    script = HERE / "bench_power.R"
    if shutil.which("Rscript") is None or not script.is_file():
        print("R comparison: Rscript or benchmarks/bench_power.R not available.")
        return
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "r.json"
        subprocess.run(["Rscript", str(script), str(n_lmm), str(n_glmm), "1", str(out)],
                       check=True)
        if out.is_file():
            print("R:", json.dumps(json.loads(out.read_text(encoding="utf-8")), indent=1))


def validity(sims: int, workers: int) -> None:
    design = TrialDesign(strata=8, cluster_size_cv=0.45, seed=7,
                         fidelity=FidelityDesign(icc=0.5),
                         admitted=BinaryDesign(risk=0.3, icc=0.05))
    start = time.perf_counter()
    res = simulate(design, sims=sims, workers=workers, effect_grid=[])
    print(f"type I error at 25 teams, {sims} null trials ({time.perf_counter() - start:.0f} s)")
    for _, row in res.summary.iterrows():
        print(f"  {row['analysis']:<28} {row['estimand']:<24} {row['power']:.4f} "
              f"(MC SE {row['power_mcse']:.4f}), failed {int(row['n_failed'])}")


def _core_plan(entry: dict[str, Any], missed: float | None = None) -> Any:
    import tomllib

    raw = tomllib.loads((HERE.parent / "analyses" / "core_power.toml").read_text("utf-8"))
    raw["analysis"] = [entry]
    raw["output"] = {"tables": [], "figures": []}
    if missed is not None:
        raw["design"]["reviews_missing"] = missed
    return parse_plan(raw)


def core_glmm_entry() -> dict[str, Any]:
    """The admission GLMM entry of analyses/core_power.toml."""
    import tomllib

    raw = tomllib.loads((HERE.parent / "analyses" / "core_power.toml").read_text("utf-8"))
    entry: dict[str, Any] = next(a for a in raw["analysis"] if a["name"] == "admitted-glmm")
    return entry


def time_target(label: str, plan: Any, sims: int, workers: int, repeats: int) -> None:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        res = simulate(plan, sims=sims, workers=workers, engine="batched")
        seconds.append(time.perf_counter() - start)
    row = res.summary[res.summary["factor"] == 1.0].iloc[0]
    runs = ", ".join(f"{v:.1f}" for v in seconds)
    print(f"{label}: sims={sims} ({2 * sims} trials with the null), {workers} worker(s): "
          f"median {float(np.median(seconds)):.1f} s of {repeats} runs ({runs} s); power "
          f"{row['power']:.3f}, type I error {row['type1_error']:.3f}, "
          f"failed {int(row['n_failed'])}")


def targets(n_lmm: int, n_glmm: int, workers: int, repeats: int, only: str | None = None
            ) -> None:
    lmm_entry = {**LMM_ENTRY, "formula": "total ~ arm * review + stratum"}
    if only in (None, "lmm"):
        # interleaved, so that the two LMM figures see the same load on a shared machine
        masked = _core_plan(lmm_entry)
        complete = _core_plan(lmm_entry, missed=0.0)
        for _ in range(repeats):
            time_target("LMM + KR, core_power design", masked, n_lmm, workers, 1)
            time_target("LMM + KR, core_power design, no review missed", complete, n_lmm,
                        workers, 1)
    if only in (None, "glmm"):
        time_target("GLMM (between-within), core_power design",
                    _core_plan(core_glmm_entry()), n_glmm, workers, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lmm", type=int, default=10_000)
    parser.add_argument("--glmm", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--r", action="store_true")
    parser.add_argument("--validity", type=int, default=0)
    parser.add_argument("--targets", action="store_true",
                        help="time the batched route's two speed targets")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=("lmm", "glmm"), default=None,
                        help="with --targets: time only the LMM (masked and complete, "
                             "interleaved) or only the GLMM target")
    parser.add_argument("--skip-tables", action="store_true",
                        help="do not time the per-trial LMM route (minutes at 10,000)")
    args = parser.parse_args()
    if args.validity:
        validity(args.validity, args.workers)
        return
    if args.targets:
        targets(args.lmm, args.glmm, args.workers, args.repeats, args.only)
        return
    if not args.skip_tables:
        time_route(LMM_ENTRY, True, args.lmm, args.workers)
    time_route(LMM_ENTRY, True, args.lmm, args.workers, engine="batched")
    time_batched(args.lmm)
    time_route(GLMM_ENTRY, False, args.glmm, args.workers)
    time_batched_glmm(args.glmm)
    if args.r:
        run_r(200, 100)


if __name__ == "__main__":
    main()

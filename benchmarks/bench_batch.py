"""Speed of the batched fitters used by power simulation (BatchedLMM, BatchedGLMM).

Run from the project folder::

    python benchmarks/bench_batch.py [--quick]

Two targets, each timed as the wall-clock median of repeated fits (after one warm-up):

* LMM: 10,000 simulated CORE-sized trials: 25 teams (15 intervention, 10 control) in
  8 strata, 3 fidelity reviews each (75 rows), ``total ~ arm * review + stratum`` with
  a team intercept (ICC 0.2), REML + Kenward-Roger for the arm effect at 12 months
  (``arm + arm:review[12m]``). Also with 10% of reviews missing at random (a mask),
  and with Satterthwaite df. Target: 10 s or less.
* GLMM: 1,000 simulated trials of a 0/1 admission outcome: the same 25 teams with 40
  to 80 service users each (about 60; 1,534 rows), ``admitted ~ arm + stratum`` with
  a team intercept (SD 0.4 on the logit scale, about 25% admitted), Laplace fit with
  between-within df for the arm log odds ratio. Target: 10 s or less.

The outcome matrices are simulated before timing; only ``fit`` is timed, and both the
wall-clock and this process's CPU time are printed (with the load average: on a shared
machine the wall-clock time includes waiting for a core). For scale,
the standard fitters (``crtstats.lmm`` / ``crtstats.glmm`` + ``.contrast``) are timed
on 20 trials, and the largest difference between their answers and the batched ones
on those trials is printed. ``--quick`` uses a tenth of the trials and one repeat.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

import crtstats
from crtstats.models import BatchedGLMM, BatchedLMM

AT_12M = {"arm[T.intervention]": 1.0, "arm[T.intervention]:review[T.12m]": 1.0}
ARM = {"arm[T.intervention]": 1.0}


def teams(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    arm = np.array(["control"] * 10 + ["intervention"] * 15)
    rng.shuffle(arm)
    return arm, np.array([f"s{k % 8}" for k in range(25)])


def fidelity_design(seed: int) -> pd.DataFrame:
    arm, stratum = teams(seed)
    rows = [(f"t{t:02d}", arm[t], stratum[t], r)
            for t in range(25) for r in ("baseline", "6m", "12m")]
    data = pd.DataFrame(rows, columns=["team_id", "arm", "stratum", "review"])
    data["review"] = pd.Categorical(data["review"], ["baseline", "6m", "12m"])
    return data


def admissions_design(seed: int) -> pd.DataFrame:
    arm, stratum = teams(seed)
    sizes = np.random.default_rng(seed + 1).integers(40, 81, size=25)
    g = np.repeat(np.arange(25), sizes)
    return pd.DataFrame({"team_id": [f"t{i:02d}" for i in g], "arm": arm[g],
                         "stratum": stratum[g]})


def fidelity_outcomes(data: pd.DataFrame, n_sims: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    codes = pd.factorize(data["team_id"])[0]
    team = rng.normal(scale=np.sqrt(0.2) * 10.0, size=(25, n_sims))[codes]
    effect = 3.0 * ((data["arm"] == "intervention") & (data["review"] == "12m")).to_numpy()
    noise = rng.normal(scale=np.sqrt(0.8) * 10.0, size=(len(data), n_sims))
    return 120.0 + effect[:, None] + team + noise


def admission_outcomes(data: pd.DataFrame, n_sims: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    codes = pd.factorize(data["team_id"])[0]
    eta = -1.1 - 0.3 * (data["arm"] == "intervention").to_numpy()[:, None]
    eta = eta + rng.normal(scale=0.4, size=(25, n_sims))[codes]
    return (rng.random((len(data), n_sims)) < 1.0 / (1.0 + np.exp(-eta))).astype(float)


def standard_lmm(data: pd.DataFrame, Y: np.ndarray) -> np.ndarray:
    out = []
    for j in range(Y.shape[1]):
        frame = data.assign(total=Y[:, j])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # boundary fits are expected in simulation
            con = crtstats.lmm("total ~ arm * review + stratum", frame,
                               cluster="team_id").contrast(AT_12M)
        out.append((con.estimate, con.std_error, con.df, con.pvalue))
    return np.array(out)


def standard_glmm(data: pd.DataFrame, Y: np.ndarray) -> np.ndarray:
    out = []
    for j in range(Y.shape[1]):
        frame = data.assign(admitted=Y[:, j])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            con = crtstats.glmm("admitted ~ arm + stratum", frame,
                                cluster="team_id").contrast(ARM)
        out.append((con.estimate, con.std_error, con.df, con.pvalue))
    return np.array(out)


def compare(name: str, batch: BatchedLMM | BatchedGLMM, Y: np.ndarray,
            standard: np.ndarray, seconds: float) -> None:
    fit = batch.fit(Y)
    got = np.column_stack([fit.estimate, fit.std_error, fit.df, fit.pvalue])
    rel = np.max(np.abs(got - standard) / np.abs(standard), axis=0)
    print(f"  standard fitter: {1000 * seconds / Y.shape[1]:.1f} ms per trial; largest "
          f"relative difference on {Y.shape[1]} trials (estimate, SE, df, p): "
          + ", ".join(f"{v:.1e}" for v in rel))


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall-clock and CPU seconds of ``repeats`` calls, after one warm-up call.

    On a shared machine the wall-clock time includes waiting for the cores; the CPU
    time of this process is what the fit itself costs.
    """
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def report(label: str, times: tuple[float, float], n_sims: int,
           target: float | None) -> None:
    wall, cpu = times
    tail = "" if target is None else f" (target {target:g} s)"
    print(f"  {label}: {wall:.2f} s wall-clock ({cpu:.2f} s CPU) for {n_sims} trials, "
          f"{1000 * wall / n_sims:.3f} ms per trial{tail}")


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    repeats = 1 if quick else 5
    n_lmm, n_glmm = (1000, 100) if quick else (10_000, 1000)
    print(f"Batched fits, medians of {repeats} fits (after a warm-up); load average "
          f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}.")

    fid = fidelity_design(0)
    Y = fidelity_outcomes(fid, n_lmm, seed=1)
    mask = np.random.default_rng(2).random(Y.shape) > 0.1
    print("LMM: 25 teams x 3 reviews, total ~ arm * review + stratum, arm at 12 months")
    for ddf in ("kenward-roger", "satterthwaite"):
        batch = BatchedLMM("total ~ arm * review + stratum", fid, cluster="team_id",
                           contrast=AT_12M, ddf=ddf)
        report(f"{ddf}, complete data", timed(lambda b=batch: b.fit(Y), repeats), n_lmm,
               10.0 * n_lmm / 10_000 if ddf == "kenward-roger" else None)
        if ddf == "kenward-roger":
            report(f"{ddf}, 10% of reviews missing",
                   timed(lambda b=batch: b.fit(Y, mask), repeats), n_lmm, None)
            start = time.perf_counter()
            standard = standard_lmm(fid, Y[:, :20])
            compare("lmm", batch, Y[:, :20], standard, time.perf_counter() - start)

    adm = admissions_design(0)
    Yb = admission_outcomes(adm, n_glmm, seed=3)
    print(f"GLMM: 25 teams, {len(adm)} service users, admitted ~ arm + stratum, Laplace")
    gbatch = BatchedGLMM("admitted ~ arm + stratum", adm, cluster="team_id", contrast=ARM)
    report("between-within df", timed(lambda: gbatch.fit(Yb), repeats), n_glmm,
           10.0 * n_glmm / 1000)
    start = time.perf_counter()
    gstandard = standard_glmm(adm, Yb[:, :20])
    compare("glmm", gbatch, Yb[:, :20], gstandard, time.perf_counter() - start)


if __name__ == "__main__":
    main(sys.argv[1:])

"""Speed of crtstats.glmm against lme4::glmer and glmmTMB.

Three fits, each timed as the median wall time of repeated fits after one warm-up:

* binomial, adaptive Gauss-Hermite with 10 nodes, 40 clusters x 100 people
  (``admitted ~ arm + age_c``, age rounded to 0.1 so that rows pool); R:
  ``glmer(..., nAGQ = 10)``;
* binomial, Laplace, 40 clusters x 2,500 people (100,000 rows) with a continuous
  person-level covariate (``admitted ~ arm + age_c``, age not rounded: no two rows
  alike, nothing pools), everything in the call included (design, checks, the
  separation check, the fit); R: ``glmer(...)`` (Laplace);
* negative binomial (NB2), Laplace, 25 teams x 2 periods with exposure
  (``admissions ~ arm * period``, offset ``log(n_users)``); R: ``glmmTMB(..., family =
  nbinom2)``.

R's times are measured inside R (``bench_glmm.R``, model fitting only, no start-up or
data reading) when ``Rscript`` is on the PATH. Run from the project folder::

    python benchmarks/bench_glmm.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _timing import median_time

import crtstats

HERE = Path(__file__).resolve().parent


def binary_trial(seed: int = 1, size: int = 100, digits: int | None = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    teams = np.repeat(np.arange(40), size)
    arm = np.repeat(rng.permutation(np.r_[np.ones(20), np.zeros(20)]), size)
    age_c = rng.normal(0, 1.5, teams.size)
    if digits is not None:
        age_c = np.round(age_c, digits)
    u = rng.normal(0, 0.4, 40)[teams]
    eta = -1.0 + np.log(0.7) * arm + 0.15 * age_c + u
    return pd.DataFrame({
        "team_id": [f"T{t:02d}" for t in teams],
        "arm": np.where(arm == 1, "intervention", "control"),
        "age_c": age_c,
        "admitted": rng.binomial(1, 1 / (1 + np.exp(-eta))),
    })


def team_counts(seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    teams = np.repeat(np.arange(25), 2)
    period = np.tile(["pre", "follow_up"], 25)
    arm = np.repeat(rng.permutation(np.r_[np.ones(15), np.zeros(10)]), 2)
    n_users = rng.integers(30, 90, 50)
    follow = period == "follow_up"
    mu = n_users * np.exp(-1.2 - 0.1 * follow + 0.05 * arm - 0.3 * arm * follow
                          + rng.normal(0, 0.3, 25)[teams])
    theta = 6.0
    y = rng.poisson(rng.gamma(theta, mu / theta))
    return pd.DataFrame({
        "team_id": [f"T{t:02d}" for t in teams],
        "arm": np.where(arm == 1, "intervention", "control"),
        "period": period,
        "log_users": np.log(n_users),
        "admissions": y,
    })


def r_times(binary: pd.DataFrame, counts: pd.DataFrame, large: pd.DataFrame,
            repeats: int) -> dict[str, float]:
    if shutil.which("Rscript") is None:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        binary.to_csv(Path(tmp) / "binary.csv", index=False)
        counts.to_csv(Path(tmp) / "counts.csv", index=False)
        large.to_csv(Path(tmp) / "large.csv", index=False, float_format="%.17g")
        out = subprocess.run(
            ["Rscript", str(HERE / "bench_glmm.R"), tmp, str(repeats),
             str(_large_repeats(repeats))],
            check=True, capture_output=True, text=True,
        )
    parsed: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return parsed


def _large_repeats(repeats: int) -> int:
    return max(3, repeats // 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    repeats = parser.parse_args().repeats
    binary, counts = binary_trial(), team_counts()
    large = binary_trial(seed=3, size=2500, digits=None)

    def fit_binary() -> crtstats.CRTResult:
        return crtstats.glmm("admitted ~ arm + age_c", binary, cluster="team_id", nagq=10)

    def fit_counts() -> crtstats.CRTResult:
        return crtstats.glmm("admissions ~ arm * period", counts, cluster="team_id",
                             family="negative_binomial", offset="log_users")

    def fit_large() -> crtstats.CRTResult:
        return crtstats.glmm("admitted ~ arm + age_c", large, cluster="team_id")

    ours = {"binomial_agq10": median_time(fit_binary, repeats),
            "nb2_laplace": median_time(fit_counts, repeats),
            "binomial_large": median_time(fit_large, _large_repeats(repeats))}
    theirs = r_times(binary, counts, large, repeats)
    print(f"crtstats {crtstats.__version__}; median of {repeats} fits after a warm-up "
          f"({_large_repeats(repeats)} for the 100,000-row fit)")
    print(f"{'fit':<44}{'crtstats (ms)':>15}{'R (ms)':>10}{'R / crtstats':>14}")
    labels = {"binomial_agq10": "binomial nAGQ=10, 40 x 100 (glmer)",
              "nb2_laplace": "NB2 Laplace, 25 x 2 (glmmTMB)",
              "binomial_large": "binomial Laplace, 40 x 2500 continuous (glmer)"}
    for key, label in labels.items():
        r = theirs.get(key)
        r_text = f"{1000 * r:10.1f}{r / ours[key]:14.1f}" if r is not None else f"{'n/a':>10}"
        print(f"{label:<44}{1000 * ours[key]:15.1f}{r_text}")
    cpu = []
    for _ in range(_large_repeats(repeats)):
        start = time.process_time()
        fit_large()
        cpu.append(time.process_time() - start)
    print(f"100,000-row fit, CPU time of this process (less disturbed by other load): "
          f"median {1000 * statistics.median(cpu):.1f} ms")
    fits = {"binomial": fit_binary(), "NB2": fit_counts(), "large": fit_large()}
    print("loglik:", ", ".join(f"{k} {v.loglik:.6f}" for k, v in fits.items()))
    if theirs:
        print("R loglik:", ", ".join(f"{k} {theirs[f'{k.lower()}_loglik']:.6f}"
                                      for k in ("binomial", "NB2", "large")))


if __name__ == "__main__":
    main()

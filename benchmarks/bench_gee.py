"""Speed of crtstats.gee against geepack::geeglm on geepack's ``ohio`` data.

``resp ~ age + smoke + age:smoke``, binomial, exchangeable working correlation, 537
children x 4 ages (2148 rows), the data written by ``tests/reference/gee.R``. One
crtstats fit computes the estimates and all four sandwiches (robust, Mancl-DeRouen,
Kauermann-Carroll, Fay-Graubard) with every check (rank, separation, cluster-level
columns). R is timed inside R (``bench_gee.R``, model fitting only) for three calls:
geeglm at its defaults (epsilon 1e-4), geeglm to convergence (epsilon 1e-12, as
crtstats iterates) and the latter with ``std.err = "jack"`` (its one bias-corrected
variance). Each figure is the median wall time of repeated fits after one warm-up; the
crtstats call is also split into building the design from the formula and the rest.
Run from the project folder::

    python benchmarks/bench_gee.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from _timing import median_time

import crtstats
from crtstats.models._design import build_design
from crtstats.models._gee_fit import fit_gee
from crtstats.models._gee_sandwich import gee_sandwiches

HERE = Path(__file__).resolve().parent
OHIO = HERE.parent / "tests" / "reference" / "data" / "gee_ohio.csv"
FORMULA = "resp ~ age + smoke + age:smoke"


def r_times(ohio: pd.DataFrame, repeats: int) -> dict[str, object]:
    if shutil.which("Rscript") is None:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        ohio.to_csv(Path(tmp) / "ohio.csv", index=False)
        out = subprocess.run(
            ["Rscript", str(HERE / "bench_gee.R"), tmp, str(repeats)],
            check=True, capture_output=True, text=True,
        )
    parsed: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return parsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    repeats = parser.parse_args().repeats
    ohio = pd.read_csv(OHIO)

    def fit() -> crtstats.CRTResult:
        return crtstats.gee(FORMULA, ohio, cluster="id", family="binomial")

    design = build_design(FORMULA, ohio, cluster="id")

    def fit_only() -> object:
        est = fit_gee(design.X, design.y, design.groups, design.n_clusters, design.offset,
                      family="binomial", exchangeable=True)
        return gee_sandwiches(design.X, design.y, design.groups, est.beta,
                              family="binomial", alpha=est.alpha, offset=design.offset)

    ours = median_time(fit, repeats)
    parts = {"design": median_time(lambda: build_design(FORMULA, ohio, cluster="id"), repeats),
             "fit": median_time(fit_only, repeats)}
    theirs = r_times(ohio, repeats)
    print(f"crtstats {crtstats.__version__}; geepack::ohio, 2148 rows, 537 clusters; "
          f"median of {repeats} fits after a warm-up")
    print(f"{'fit':<52}{'ms':>9}{'R / crtstats':>14}")
    print(f"{'crtstats.gee (estimates + 4 sandwiches)':<52}{1000 * ours:9.1f}")
    print(f"{'  of which: design from the formula (build_design)':<52}"
          f"{1000 * parts['design']:9.1f}")
    print(f"{'  of which: Fisher scoring + 4 sandwiches':<52}{1000 * parts['fit']:9.1f}")
    labels = {"geeglm_default": "geeglm, default epsilon 1e-4 (robust SE)",
              "geeglm_tight": "geeglm, epsilon 1e-12 (robust SE)",
              "geeglm_jack": "geeglm, epsilon 1e-12, std.err = 'jack'"}
    for key, label in labels.items():
        r = theirs.get(key)
        if isinstance(r, float | int):
            print(f"{label:<52}{1000 * r:9.1f}{r / ours:14.1f}"
                  f"   (fit part alone: {r / parts['fit']:.1f}x)")
    res = fit()
    print("alpha", f"{res.info['alpha']:.12f}", "coef", np.round(res.param_values, 10))
    if theirs:
        print("R alpha", f"{theirs['alpha']:.12f}", "coef", np.round(theirs["coef"], 10))


if __name__ == "__main__":
    main()

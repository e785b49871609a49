"""Benchmark: marginal standardisation of a 1,000,000-row binomial GLMM with 200 clusters.

Run from the project folder::

    .venv/bin/python benchmarks/bench_standardise.py [--rows 1000000] [--repeats 3]
        [--continuous]

The data: 200 teams (100 per arm) in 8 strata, service users with an integer age
(18-90) and sex, and a 0/1 outcome from a random-intercept logistic model (cluster SD
0.5). The model ``y ~ arm + stratum + age + sex`` is fitted once (Laplace), then
``standardise(type="marginal")`` (and the conditional and cluster-specific types) is
timed; the figure is the median of the repeats. Peak memory is measured by
tracemalloc (Python and numpy allocations) during one further call, and the process's
peak RSS is printed too. ``--continuous`` makes age continuous, so that every row has
its own linear predictor (the quadrature's worst case).

Target (issue 15): under 2 s and under 2 GB for the marginal type.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
import tracemalloc
import warnings

import numpy as np
import pandas as pd

import crtstats


def make_data(n_rows: int, n_clusters: int, continuous: bool, seed: int = 20261201
              ) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    team = rng.integers(0, n_clusters, n_rows)
    arm = np.where(np.arange(n_clusters) % 2 == 0, "control", "intervention")[team]
    stratum = np.array([f"S{k}" for k in range(8)])[(np.arange(n_clusters) // 2) % 8][team]
    age = rng.uniform(18, 90, n_rows) if continuous else rng.integers(18, 91, n_rows)
    sex = rng.choice(["female", "male"], n_rows)
    u = rng.normal(0.0, 0.5, n_clusters)[team]
    eta = -1.2 - 0.3 * (arm == "intervention") + 0.01 * (age - 50) + 0.2 * (sex == "male")
    y = (rng.random(n_rows) < 1.0 / (1.0 + np.exp(-(eta + u)))).astype(float)
    return pd.DataFrame({"y": y, "arm": arm, "stratum": stratum, "age": age, "sex": sex,
                         "team": [f"T{t:03d}" for t in team]})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--clusters", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--continuous", action="store_true")
    args = parser.parse_args()
    data = make_data(args.rows, args.clusters, args.continuous)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = crtstats.glmm("y ~ arm + stratum + age + sex", data, cluster="team")
    print(f"data: {args.rows} rows, {args.clusters} clusters, age "
          f"{'continuous' if args.continuous else 'integer'}; fit {time.perf_counter() - t0:.1f} s")
    for type_ in ("marginal", "conditional", "cluster-specific"):
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            std = crtstats.standardise(fit, data, by="arm", type=type_)  # type: ignore[arg-type]
            times.append(time.perf_counter() - t0)
        print(f"{type_:>16}: median {statistics.median(times):.2f} s over {args.repeats} "
              f"(min {min(times):.2f}, max {max(times):.2f}); nodes {std.nodes}")
    tracemalloc.start()
    crtstats.standardise(fit, data, by="arm")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"marginal: tracemalloc peak {peak / 2**20:.0f} MiB; process peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB "
          "(including the data and the fit)")
    print(std.to_frame().iloc[:, :8].to_string())


if __name__ == "__main__":
    main()

"""Speed of crtstats.permutation_test and crtstats.gee on the example trial.

Target: 10,000 re-randomisations of a built-in cluster-level statistic in under a
second. Timed as the median wall time of repeated calls after one warm-up, on the
example trial's follow-up service users (25 teams, 1,388 people):

* ``mean_difference`` of team admission proportions, re-randomised within the 8
  strata by Monte Carlo (13,122 allocations exist, so 10,000 are drawn);
* the same, unstratified (3,268,760 allocations, 10,000 drawn);
* the same, exact (all 13,122 stratified allocations enumerated);
* ``t``, Monte Carlo, 10,000;
* ``mean_difference``, strata, exact, with 1e8 added to every outcome (the centred
  summaries and the scaled tie tolerance cost nothing extra);
* one two-stage ``cluster_level`` fit (binary, ratio, adjusted for stratum);
* for scale, 100 re-randomisations of a callable (a pandas group-by per allocation)
  and one ``gee`` fit with the Kauermann-Carroll sandwich.

Run from the project folder::

    python benchmarks/bench_permutation.py [--repeats 7]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pandas as pd
from _timing import median_time

import crtstats


def follow_up() -> pd.DataFrame:
    trial = crtstats.datasets.load_example()
    adm = trial.admissions
    return adm[adm["period"] == "follow_up"].merge(trial.teams, on="team_id")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    data = follow_up()
    shifted = data.assign(admitted=data["admitted"] + 1e8)
    base = {"arm": "arm", "cluster": "team_id", "outcome": "admitted"}

    def team_diff(d: pd.DataFrame) -> float:
        means = d.groupby("team_id").agg(arm=("arm", "first"), y=("admitted", "mean"))
        by_arm = means.groupby("arm")["y"].mean()
        return float(by_arm["intervention"] - by_arm["control"])

    cases: dict[str, Callable[[], object]] = {
        "mean_difference, strata, Monte Carlo 10,000": lambda: crtstats.permutation_test(
            data, statistic="mean_difference", strata="stratum", seed=1, **base),
        "mean_difference, no strata, Monte Carlo 10,000": lambda: crtstats.permutation_test(
            data, statistic="mean_difference", seed=1, **base),
        "mean_difference, strata, exact 13,122": lambda: crtstats.permutation_test(
            data, statistic="mean_difference", strata="stratum", n_resamples=20_000, **base),
        "t, strata, Monte Carlo 10,000": lambda: crtstats.permutation_test(
            data, statistic="t", strata="stratum", seed=1, **base),
        "mean_difference + 1e8, strata, exact 13,122": lambda: crtstats.permutation_test(
            shifted, statistic="mean_difference", strata="stratum", n_resamples=20_000,
            **base),
        "cluster_level binary ratio, two-stage (one fit)": lambda: crtstats.cluster_level(
            data, outcome="admitted", arm="arm", cluster="team_id", outcome_type="binary",
            scale="ratio", covariates=["stratum"]),
        "callable (pandas group-by), 100": lambda: crtstats.permutation_test(
            data, statistic=team_diff, arm="arm", cluster="team_id", strata="stratum",
            n_resamples=100, seed=1),
        "gee binomial exchangeable, Kauermann-Carroll (one fit)": lambda: crtstats.gee(
            "admitted ~ arm + stratum", data, cluster="team_id", family="binomial"),
    }
    print(f"{'case':<58} {'median s':>10}")
    for name, fn in cases.items():
        print(f"{name:<58} {median_time(fn, args.repeats):>10.4f}")


if __name__ == "__main__":
    main()

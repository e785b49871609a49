"""Speed of crtstats.lmm with Kenward-Roger df against statsmodels MixedLM and lme4.

Run from the project folder::

    python benchmarks/bench_lmm.py

Three designs: (a) 25 teams x 3 reviews (``y ~ arm * review``), (b) 25 teams x 15
people and (c) 200 clusters x 500 people (100,000 rows), both ``y ~ arm + x``. Each
fitter runs on the same data in the same process: crtstats.lmm (REML, Kenward-Roger
covariance and df for every coefficient) and statsmodels MixedLM (REML, z tests only).
When ``Rscript`` is on the PATH, ``benchmarks/bench_lmm.R`` times ``lme4::lmer`` +
``pbkrtest::vcovAdj`` + KR df inside R on the same CSV files. Times are wall-clock
medians over repeats (after one warm-up call); the script prints them and the ratios,
and also the time of the shared formula/design step (``build_design``) inside ``lmm``.
``--quick`` skips R and repeats statsmodels once. ``--validity`` instead prints the
type I error of the KR, Satterthwaite and z tests of a null arm effect (1000 simulated
trials with 10 and with 25 teams).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from _timing import median_time

import crtstats
from crtstats.models._design import build_design

HERE = Path(__file__).resolve().parent
CASES = {
    "a": ("25 teams x 3 reviews", 25, 3, "y ~ arm * review"),
    "b": ("25 teams x 15 people", 25, 15, "y ~ arm + x"),
    "c": ("200 clusters x 500 people", 200, 500, "y ~ arm + x"),
}


def make_data(n_clusters: int, size: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cluster = np.repeat(np.arange(n_clusters), size)
    arm = (rng.permutation(n_clusters) % 2)[cluster]
    review = np.tile(["baseline", "6m", "12m"], n_clusters * size // 3 + 1)[: cluster.size]
    x = rng.normal(size=cluster.size)
    y = 100.0 + 5.0 * arm + 2.0 * x + rng.normal(scale=4.0, size=n_clusters)[cluster]
    y += rng.normal(scale=6.0, size=cluster.size)
    return pd.DataFrame({
        "team": [f"T{c:03d}" for c in cluster],
        "arm": np.where(arm == 1, "intervention", "control"),
        "review": pd.Categorical(review, ["baseline", "6m", "12m"]),
        "x": x,
        "y": y,
    })


def time_statsmodels(formula: str, data: pd.DataFrame, repeats: int) -> float:
    def fit() -> object:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MixedLM's convergence chatter is not timed
            return smf.mixedlm(formula, data, groups=data["team"]).fit(reml=True)

    return median_time(fit, repeats)


def time_r(folder: Path) -> dict[str, dict[str, float]] | None:
    rscript = shutil.which("Rscript")
    if rscript is None:
        return None
    out = folder / "r_times.json"
    subprocess.run([rscript, str(HERE / "bench_lmm.R"), str(folder), str(out)], check=True)
    result: dict[str, dict[str, float]] = json.loads(out.read_text())
    return result


def type_one_error(n_clusters: int, reps: int, seed: int) -> dict[str, float]:
    """Share of p < 0.05 for a null arm effect: KR, Satterthwaite, z (normal) tests.

    25 or 10 teams x 3 reviews, ICC 0.3, arm allocated half and half; ``y ~ arm``.
    """
    rng = np.random.default_rng(seed)
    hits = {"kenward-roger": 0, "satterthwaite": 0, "z": 0}
    from scipy import stats

    for _ in range(reps):
        team = np.repeat(np.arange(n_clusters), 3)
        arm = (rng.permutation(n_clusters) < n_clusters // 2).astype(float)[team]
        y = rng.normal(scale=np.sqrt(0.3), size=n_clusters)[team]
        y += rng.normal(scale=np.sqrt(0.7), size=team.size)
        data = pd.DataFrame({"team": team.astype(str), "arm": arm, "y": y})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # boundary fits are part of the null behaviour
            kr = crtstats.lmm("y ~ arm", data, cluster="team")
            sat = crtstats.lmm("y ~ arm", data, cluster="team", ddf="satterthwaite")
        hits["kenward-roger"] += bool(kr.pvalues["arm"] < 0.05)
        hits["satterthwaite"] += bool(sat.pvalues["arm"] < 0.05)
        z = sat.params["arm"] / sat.std_errors["arm"]
        hits["z"] += bool(2 * stats.norm.sf(abs(z)) < 0.05)
    return {k: v / reps for k, v in hits.items()}


def main() -> None:
    if "--validity" in sys.argv:
        for g in (10, 25):
            rates = type_one_error(g, reps=1000, seed=g)
            shown = ", ".join(f"{k} {v:.3f}" for k, v in rates.items())
            print(f"type I error at 5%, {g} teams x 3 reviews, 1000 trials: {shown}")
        return
    quick = "--quick" in sys.argv
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for key, (label, n_clusters, size, formula) in CASES.items():
            data = make_data(n_clusters, size, seed=ord(key))
            data.to_csv(folder / f"case_{key}.csv", index=False)
            (folder / f"case_{key}.formula").write_text(formula + "\n")
            reps = 3 if key == "c" else 15
            ours = median_time(
                lambda d=data, f=formula: crtstats.lmm(f, d, cluster="team"), reps
            )
            design = median_time(
                lambda d=data, f=formula: build_design(f, d, cluster="team"), reps
            )
            sm_reps = 1 if (key == "c" or quick) else 5
            sm = time_statsmodels(formula, data, sm_reps)
            rows.append({"case": key, "design": label, "rows": len(data),
                         "crtstats_ms": 1e3 * ours, "of_which_design_ms": 1e3 * design,
                         "statsmodels_ms": 1e3 * sm})
            print(f"({key}) {label}: crtstats {1e3 * ours:.1f} ms (formula and design "
                  f"{1e3 * design:.1f} ms), statsmodels MixedLM {1e3 * sm:.1f} ms", flush=True)
        r_times = None if quick else time_r(folder)
    table = pd.DataFrame(rows).set_index("case")
    table["vs_statsmodels"] = table["statsmodels_ms"] / table["crtstats_ms"]
    if r_times is not None:
        table["lmer_kr_ms"] = [r_times[k]["lmer_kr_ms"] for k in table.index]
        table["lmer_only_ms"] = [r_times[k]["lmer_ms"] for k in table.index]
        table["vs_lmer_kr"] = table["lmer_kr_ms"] / table["crtstats_ms"]
        table["vs_lmer_only"] = table["lmer_only_ms"] / table["crtstats_ms"]
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(table.to_string(float_format=lambda v: f"{v:.1f}"))
    print("lmer_kr_ms is NaN where pbkrtest cannot run (it forms n x n matrices); "
          "lmer_only_ms is the lme4 fit alone, a lower bound for lmer + KR.")


if __name__ == "__main__":
    main()

"""Benchmark: validating a 1,000,000-row admissions table.

Target: under 5 seconds and under 2 GB peak memory on 2 cores. Prints the time of
``crtstats.validate`` on a clean table (best and median of ``--repeat`` runs), on the
same table with 1% of rows broken (the error path, which builds the failure table),
and of ``read_table`` on the table written as CSV; then the peak resident memory of
the process (which includes the data itself).

Run: ``python benchmarks/bench_validate.py [--rows 1000000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import crtstats
from crtstats.io import read_table, write_csv


def admissions(n_rows: int, seed: int = 1) -> pd.DataFrame:
    """A clean admissions table: 25 teams, two periods, one row per user and period."""
    rng = np.random.default_rng(seed)
    per_cell = -(-n_rows // 50)
    team = np.repeat([f"T{t:02d}" for t in range(1, 26)], 2 * per_cell)[:n_rows]
    period = np.tile(np.repeat(["pre", "follow_up"], per_cell), 25)[:n_rows]
    person = np.char.add(np.char.add(team.astype(str), "-P"),
                         np.tile(np.arange(per_cell).astype(str), 50)[:n_rows])
    admitted = (rng.random(n_rows) < 0.25).astype(np.int64)
    bed_days = np.where(admitted == 1, rng.integers(1, 90, n_rows), 0)
    return pd.DataFrame({
        "team_id": pd.array(team, dtype="string"),
        "person_id": pd.array(person, dtype="string"),
        "period": pd.array(period, dtype="string"),
        "admitted": pd.array(admitted, dtype="Int64"),
        "bed_days": pd.array(bed_days, dtype="Int64"),
        "readmitted": pd.array(rng.random(n_rows) < 0.1, dtype="Int64"),
        "age": pd.array(rng.integers(18, 90, n_rows), dtype="Int64"),
        "sex": pd.array(rng.choice(["female", "male"], n_rows), dtype="string"),
    })


def timed(fn: object, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return times


def broken(df: pd.DataFrame, share: float = 0.01) -> pd.DataFrame:
    bad = df.copy()
    rows = np.arange(0, len(df), int(1 / share))
    bad.loc[rows, "admitted"] = 2
    return bad


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    df = admissions(args.rows)
    print(f"admissions: {len(df):,} rows, {df.memory_usage(deep=True).sum() / 2**20:.0f} MiB")
    clean = timed(lambda: crtstats.validate(df, table="admissions"), args.repeat)
    print(f"validate, clean:      best {min(clean):.2f} s, median "
          f"{statistics.median(clean):.2f} s  (target < 5 s)")
    bad = broken(df)

    def fail() -> None:
        try:
            crtstats.validate(bad, table="admissions")
        except crtstats.SchemaValidationError as err:
            assert len(err.failure_cases) == len(np.arange(0, len(df), 100))

    errors = timed(fail, 1)
    print(f"validate, 1% broken:  {errors[0]:.2f} s ({len(bad) // 100:,} problems reported)")
    with tempfile.TemporaryDirectory() as tmp:
        path = write_csv(df, Path(tmp) / "admissions.csv")
        reads = timed(lambda: read_table(path, table="admissions"), 1)
    print(f"read_table (CSV):     {reads[0]:.2f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    print(f"peak resident memory: {peak * scale / 2**30:.2f} GiB (whole process, data "
          "included; target < 2 GB)")


if __name__ == "__main__":
    main()

"""Reproducible analysis runs: a plan (TOML) in, a results folder out."""

from crtstats.runner._run import RunResult, run

__all__ = ["RunResult", "run"]

"""The run manifest: what went in, what ran, with which methods, and what it warned.

The manifest is built from plain values so that two runs of the same plan on the same
data give the same JSON, byte for byte, except for :data:`TIMESTAMP_FIELD`.
"""

from __future__ import annotations

import hashlib
import platform
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from crtstats.models import CRTResult, PermutationResult

__all__ = [
    "MANIFEST_VERSION",
    "TIMESTAMP_FIELD",
    "RecordedWarning",
    "file_record",
    "fit_record",
    "input_record",
    "record_warnings",
    "versions",
]

#: The one manifest field that differs between two runs of the same plan on the same data.
TIMESTAMP_FIELD = "created_utc"

#: Version of the manifest layout; raised when a field changes meaning.
MANIFEST_VERSION = 1

_DEPENDENCIES = (
    "numpy", "scipy", "pandas", "statsmodels", "linearmodels", "pandera", "formulaic",
    "matplotlib", "seaborn", "jinja2", "python-docx", "pyarrow", "openpyxl", "pyyaml",
)


@dataclass(frozen=True)
class RecordedWarning:
    """A warning raised during one stage of a run."""

    stage: str
    category: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """The warning as a JSON-ready dict."""
        return {"stage": self.stage, "category": self.category, "message": self.message}


@contextmanager
def record_warnings(stage: str, sink: list[RecordedWarning]) -> Iterator[None]:
    """Record every warning raised inside the block into ``sink``, tagged with ``stage``.

    Warnings are recorded, not shown: the run reports them in the manifest, the report
    and (from the command line) on stderr. A warning repeated with the same category and
    message is recorded once.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    seen = {(w.category, w.message) for w in sink if w.stage == stage}
    for item in caught:
        entry = RecordedWarning(stage, item.category.__name__, str(item.message))
        if (entry.category, entry.message) not in seen:
            seen.add((entry.category, entry.message))
            sink.append(entry)


def versions() -> dict[str, str]:
    """Versions of Python, crtstats and the libraries a run's numbers depend on."""
    out = {"python": platform.python_version()}
    for name in ("crtstats", *_DEPENDENCIES):
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - all are declared dependencies
            out[name] = "not installed"
    return out


def input_record(
    provenance: Mapping[str, Any], mapped: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The manifest entry of one input file: name, sha256, rows and column mapping."""
    record: dict[str, Any] = {key: provenance[key] for key in ("file", "sha256", "rows")}
    if mapped:
        record["column_mapping"] = dict(mapped)
    return record


def file_record(path: Path) -> dict[str, str]:
    """The manifest entry of an input that is not a table (a mapping or key file): its
    name and the sha256 of its bytes."""
    return {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def fit_record(name: str, fit: CRTResult | PermutationResult) -> dict[str, Any]:
    """The methods of one fitted model: fitter, formula, df method, covariance, size.

    Works for :class:`~crtstats.CRTResult` and for results that carry only some of
    these attributes (a permutation test has no covariance); what is absent is left
    out rather than guessed.
    """
    record: dict[str, Any] = {"fit": name, "result_type": type(fit).__name__}
    for attribute in ("model", "formula", "family", "link", "df_method", "cov_type",
                      "nobs", "n_clusters", "converged", "statistic", "n_resamples",
                      "exact", "pvalue"):
        value = getattr(fit, attribute, None)
        if isinstance(value, str | int | float | bool):
            record[attribute] = value
    if "df_method" not in record and hasattr(fit, "n_allocations"):  # a randomisation test
        draws = "exact" if getattr(fit, "exact", False) else "Monte Carlo"
        record.update(df_method=f"randomisation ({draws})", cov_type="none",
                      n_allocations=int(fit.n_allocations))
    messages: Sequence[Any] = getattr(fit, "warnings", ()) or ()
    if messages:
        record["warnings"] = [str(m) for m in messages]
    return record

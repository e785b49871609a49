"""A messy example: the shipped example trial as a trust would export it.

The tables are derived, when called, from the clean shipped example
(:func:`crtstats.datasets.load_example`), so any change to it flows through. The export
has the trust's own column names, ``Intervention``/``Control``, ``Baseline``/``6
months``/``12 months``, items ``Q1`` ... ``Q39``, dd/mm/yyyy dates written as text,
``Yes``/``No`` admissions, an Excel workbook whose first sheet is notes, and an
admissions CSV with a byte-order mark, Windows line ends and blank ``,,,`` rows at its
end. The mapping file and the plan that read it ship beside the data.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["MESSY_FILES", "messy_tables", "write_messy_example"]

#: The files :func:`write_messy_example` writes, by role.
MESSY_FILES = {"workbook": "trust_export.xlsx", "admissions": "admissions_export.csv",
               "mapping": "trust_export.mapping.toml", "plan": "trust_export.toml"}

_REVIEWS = {"baseline": "Baseline", "6m": "6 months", "12m": "12 months"}
_PERIODS = {"pre": "Pre-intervention", "follow_up": "Follow-up"}
_YES_NO = {1: "Yes", 0: "No"}
_NOTES = ("CORE fidelity trial: export for the trial statistician",
          "Sheets: Teams (one row per team), Fidelity (one row per team and review, items "
          "Q1-Q39)",
          "Dates are day/month/year. Admissions are in admissions_export.csv.")


def _uk_dates(values: pd.Series) -> pd.Series:
    dates = pd.to_datetime(values.astype("string"), format="%Y-%m-%d")
    return dates.dt.strftime("%d/%m/%Y").astype(object).where(values.notna(), None)


def _labels(values: pd.Series, labels: Mapping[Any, str]) -> pd.Series:
    return values.astype(object).map(lambda v: None if pd.isna(v) else labels[v])


def messy_tables() -> dict[str, pd.DataFrame]:
    """The example trial's teams, fidelity and admissions as the trust exports them.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``teams``, ``fidelity`` and ``admissions`` with the export's columns and labels
        (object columns, as a spreadsheet holds them).

    Examples
    --------
    >>> tables = messy_tables()
    >>> list(tables["teams"].columns)
    ['Team code', 'Allocation', 'Trust', 'Date randomised']
    >>> tables["fidelity"]["Review"].iloc[0], tables["admissions"]["Admitted"].iloc[1]
    ('Baseline', 'Yes')
    """
    from crtstats.datasets._example import load_example

    clean = load_example()
    teams = pd.DataFrame({
        "Team code": clean.teams["team_id"].astype(object),
        "Allocation": clean.teams["arm"].astype(object).str.capitalize(),
        "Trust": clean.teams["stratum"].astype(object),
        "Date randomised": _uk_dates(clean.teams["randomised_on"]),
    })
    fid = clean.fidelity
    items = {c: f"Q{int(c[5:])}" for c in fid.columns if c.startswith("item_")}
    head = pd.DataFrame({
        "Team code": fid["team_id"].astype(object),
        "Review": _labels(fid["review"], _REVIEWS),
        "Date of review": _uk_dates(fid["reviewed_on"]),
        "Scale version": fid["scale_version"].astype(object),
    })
    scores = fid[list(items)].rename(columns=items).astype(object)
    fidelity = pd.concat([head, scores], axis="columns")
    adm = clean.admissions
    admissions = pd.DataFrame({
        "Team": adm["team_id"].astype(object),
        "Patient ID": adm["person_id"].astype(object),
        "Period": _labels(adm["period"], _PERIODS),
        "Admitted": _labels(adm["admitted"], _YES_NO),
        "Bed days": adm["bed_days"].astype(object),
        "CRT readmission": _labels(adm["readmitted"], _YES_NO),
        "Age": adm["age"].astype(object),
        "Sex": adm["sex"].astype(object),
    })
    return {"teams": teams, "fidelity": fidelity.where(fidelity.notna(), None),
            "admissions": admissions.where(admissions.notna(), None)}


def write_messy_example(folder: str | PathLike[str]) -> dict[str, Path]:
    """Write the messy example's files, its mapping and its plan into ``folder``.

    Parameters
    ----------
    folder
        The folder to write into (created if needed); files of the same names in it are
        replaced.

    Returns
    -------
    dict of str to Path
        The paths written, by role: ``workbook`` (``trust_export.xlsx``: sheets Notes,
        Teams, Fidelity), ``admissions`` (``admissions_export.csv``), ``mapping``
        (``trust_export.mapping.toml``) and ``plan`` (``trust_export.toml``).

    Examples
    --------
    >>> import tempfile
    >>> paths = write_messy_example(tempfile.mkdtemp())
    >>> sorted(paths)
    ['admissions', 'mapping', 'plan', 'workbook']
    >>> import crtstats
    >>> trial = crtstats.load_trial(
    ...     teams=paths["workbook"], fidelity=paths["workbook"],
    ...     admissions=paths["admissions"],
    ...     columns=crtstats.schema.load_mapping(paths["mapping"]))
    >>> len(trial.teams), len(trial.fidelity), trial.exclusions["rows"].tolist()
    (25, 74, [3])
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    tables = messy_tables()
    paths = {role: out / name for role, name in MESSY_FILES.items()}
    with pd.ExcelWriter(paths["workbook"], engine="openpyxl") as book:
        pd.DataFrame({"Notes": list(_NOTES)}).to_excel(book, sheet_name="Notes", index=False)
        tables["teams"].to_excel(book, sheet_name="Teams", index=False)
        tables["fidelity"].to_excel(book, sheet_name="Fidelity", index=False)
    text = tables["admissions"].to_csv(index=False, lineterminator="\r\n")
    width = tables["admissions"].shape[1]
    text += ("," * (width - 1) + "\r\n") * 3  # the blank rows a spreadsheet leaves
    paths["admissions"].write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    shipped = resources.files("crtstats.datasets") / "data"
    for role in ("mapping", "plan"):
        paths[role].write_bytes((shipped / MESSY_FILES[role]).read_bytes())
    return paths

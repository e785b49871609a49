"""A data mapping's ``items`` for questionnaire tables: a trust's item columns read as
an instrument's.

``items = { pattern = "CSQ{n}", instrument = "csq8" }`` reads the columns ``CSQ1`` ..
``CSQ8`` (leading zeros allowed) as the columns the instrument key names for items 1 ..
8 (``csq8_01`` .. ``csq8_08``). A table holding several instruments lists one such
entry per instrument: ``items = [{ pattern = "GHQ{n}", instrument = "ghq12" }, ...]``.
The key's item numbers and columns are read from its file; nothing is restated here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from crtstats._resources import schema_dir
from crtstats.exceptions import MappingError

__all__ = ["InstrumentItems", "instrument_columns", "parse_instrument_items",
           "rename_instrument_items"]


@dataclass(frozen=True)
class InstrumentItems:
    """Columns matching ``pattern`` (one ``{n}``, the item number) read as the item
    columns of ``instrument`` (a shipped key's name, or the path of a key file)."""

    pattern: str
    instrument: str

    def to_dict(self) -> dict[str, str]:
        """The entry in its TOML shape."""
        return {"pattern": self.pattern, "instrument": self.instrument}


def _number_pattern(pattern: str) -> re.Pattern[str]:
    head, tail = pattern.split("{n}")
    return re.compile(re.escape(head) + r"0*([1-9]\d*)" + re.escape(tail))


def _one(raw: Any, where: str) -> InstrumentItems:
    if not isinstance(raw, Mapping) or set(raw) != {"pattern", "instrument"}:
        raise MappingError(
            f"{where} must be {{ pattern = \"CSQ{{n}}\", instrument = \"csq8\" }} (or a list "
            f"of such tables, one per instrument); got {raw!r}."
        )
    pattern, instrument = raw["pattern"], raw["instrument"]
    if not isinstance(pattern, str) or pattern.count("{n}") != 1:
        raise MappingError(f"{where}.pattern must have one {{n}} for the item number, such "
                           f"as \"CSQ{{n}}\"; got {pattern!r}.")
    if not isinstance(instrument, str) or not instrument:
        raise MappingError(f"{where}.instrument must name an instrument key (\"csq8\") or "
                           f"a key file; got {instrument!r}.")
    instrument_columns(instrument, where)  # an unknown instrument is a mapping error
    return InstrumentItems(pattern, instrument)


def parse_instrument_items(raw: Any, where: str) -> tuple[InstrumentItems, ...]:
    """Check a questionnaire table's ``items`` entry (one table or a list of them)."""
    entries = raw if isinstance(raw, list) else [raw]
    if not entries:
        raise MappingError(f"{where} is an empty list; give one entry per instrument.")
    out = tuple(_one(e, f"{where}[{i}]" if isinstance(raw, list) else where)
                for i, e in enumerate(entries))
    instruments = [e.instrument for e in out]
    if len(set(instruments)) != len(instruments):
        raise MappingError(f"{where} names an instrument twice: {instruments}.")
    return out


def _key_path(instrument: str) -> Path:
    if instrument.lower().endswith((".yaml", ".yml")):
        return Path(instrument).resolve()
    return schema_dir() / "instruments" / f"{instrument}.yaml"


def instrument_columns(instrument: str, where: str = "items") -> dict[int, str]:
    """Item number -> column of an instrument key (read from its file)."""
    try:
        return dict(_columns(_key_path(instrument)))
    except MappingError as err:
        raise MappingError(f"{where}: {err}") from None


@cache
def _columns(path: Path) -> tuple[tuple[int, str], ...]:
    if not path.is_file():
        shipped = sorted(p.stem for p in (schema_dir() / "instruments").glob("*.yaml"))
        raise MappingError(f"no instrument key {path.stem!r} (file {path.name}); shipped "
                           f"keys: {shipped}, or give the path of a key file.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        pairs = tuple((int(i["number"]), str(i["column"])) for i in raw["items"])
    except (yaml.YAMLError, KeyError, TypeError, ValueError, UnicodeDecodeError):
        raise MappingError(f"instrument key {path.name} has no readable items list; check "
                           "it with crtstats.scales.load_instrument.") from None
    return pairs


def rename_instrument_items(frame: pd.DataFrame, specs: tuple[InstrumentItems, ...],
                            table: str) -> tuple[dict[Any, str], list[tuple[str, str, int]]]:
    """The renames the entries declare (the file's column -> the key's), and per entry
    its first..last source and target and the number of columns.

    Raises
    ------
    MappingError
        If an entry matches no column.
    """
    renames: dict[Any, str] = {}
    described: list[tuple[str, str, int]] = []
    for spec in specs:
        columns = instrument_columns(spec.instrument)
        compiled = _number_pattern(spec.pattern)
        found = {}
        for name in frame.columns:
            match = compiled.fullmatch(name) if isinstance(name, str) else None
            if match and int(match.group(1)) in columns:
                found[name] = columns[int(match.group(1))]
        if not found:
            shown = ", ".join(map(repr, map(str, frame.columns[:12])))
            raise MappingError(f"the mapping's items pattern {spec.pattern!r} "
                               f"({spec.instrument}) for {table} matches no column; columns "
                               f"are {shown}.")
        renames.update(found)
        first, last = list(found.items())[0], list(found.items())[-1]
        described.append((f"{first[0]}..{last[0]}", f"{first[1]}..{last[1]}", len(found)))
    return renames, described

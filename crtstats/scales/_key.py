"""Fidelity scale keys: read a YAML key from ``data_schema/scales/`` and check it.

A key is the only place a scale's items, domains, ranges and bands are stated; the
scoring code reads them from here and restates none of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from os import PathLike
from pathlib import Path
from typing import Any

import yaml

from crtstats._resources import schema_dir
from crtstats.exceptions import ScaleKeyError

__all__ = ["Domain", "ScaleItem", "ScaleKey", "available_scales", "load_scale"]

#: The proration methods a key may name under ``missing: proration``.
PRORATION_METHODS = ("scored_item_mean",)


@dataclass(frozen=True)
class ScaleItem:
    """One item of a scale: its number, data column, short label and domain key."""

    number: int
    column: str
    label: str
    domain: str


@dataclass(frozen=True)
class Domain:
    """A domain (sub-scale): its key, label and the data columns of its items."""

    key: str
    label: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class ScaleKey:
    """A fidelity scale key as read from its YAML file.

    Attributes
    ----------
    key
        The scale's name (e.g. ``"core_crt_v2"``), equal to the file's stem.
    title
        A human-readable title.
    item_min, item_max
        The range of an item score (integers, inclusive).
    total_min, total_max
        The range of the total, equal to the number of items times the item range.
    items
        The items in number order.
    domains
        The domains in reporting order; together they hold every item once.
    bands
        ``(name, from)`` pairs in ascending order: a total ``t`` is in the last band
        whose lower bound ``from`` is at most ``t``.
    proration
        How a total with missing items is prorated (``"scored_item_mean"``).
    """

    key: str
    title: str
    item_min: int
    item_max: int
    total_min: int
    total_max: int
    items: tuple[ScaleItem, ...]
    domains: tuple[Domain, ...]
    bands: tuple[tuple[str, float], ...]
    proration: str

    @cached_property
    def columns(self) -> tuple[str, ...]:
        """The item columns in item order."""
        return tuple(item.column for item in self.items)

    @property
    def n_items(self) -> int:
        """The number of items."""
        return len(self.items)

    @property
    def band_names(self) -> tuple[str, ...]:
        """The band names from lowest to highest."""
        return tuple(name for name, _ in self.bands)


def _scales_dir() -> Path:
    return schema_dir() / "scales"


def available_scales() -> tuple[str, ...]:
    """The names of the scale keys shipped in ``data_schema/scales/``.

    Returns
    -------
    tuple of str
        Key names (file stems), sorted; each can be passed to :func:`load_scale`.

    Examples
    --------
    >>> "core_crt_v2" in available_scales()
    True
    """
    return tuple(sorted(path.stem for path in _scales_dir().glob("*.yaml")))


def load_scale(scale: str | PathLike[str] | ScaleKey) -> ScaleKey:
    """Load and check a scale key, by name or from a YAML file.

    Parameters
    ----------
    scale
        The name of a key shipped in ``data_schema/scales/`` (e.g. ``"core_crt_v2"``),
        the path of a key file of the same format (a name ending in ``.yaml`` or
        ``.yml``, or any :class:`os.PathLike`), or an already loaded key (returned
        as it is).

    Returns
    -------
    ScaleKey
        The checked key.

    Raises
    ------
    ScaleKeyError
        If no such key exists or the key is malformed: items not numbered 1 to n,
        repeated columns, domains that do not partition the items, a total range
        other than the number of items times the item range, or bands not ascending
        from the lowest total.

    Notes
    -----
    Adding a scale needs only a new key file; see ``docs/scoring.md`` for its format.

    References
    ----------
    Lloyd-Evans B, et al. (2016). Development of a measure of model fidelity for mental
    health Crisis Resolution Teams. BMC Psychiatry 16:427.

    The key is plain YAML; in R, ``yaml::read_yaml("data_schema/scales/core_crt_v2.yaml")``
    reads the same structure.

    Examples
    --------
    >>> key = load_scale("core_crt_v2")
    >>> key.n_items, key.total_min, key.total_max, key.band_names
    (39, 39, 195, ('low', 'moderate', 'high'))
    >>> [d.key for d in key.domains]
    ['referrals_access', 'content_delivery', 'staffing_procedures', 'location_timing']
    """
    if isinstance(scale, ScaleKey):
        return scale
    if isinstance(scale, str) and not scale.lower().endswith((".yaml", ".yml")):
        if scale not in available_scales():
            raise ScaleKeyError(
                f"unknown scale {scale!r}; shipped keys: {list(available_scales())}. "
                "Pass the path of a key file to use another scale."
            )
        return _load_path(_scales_dir() / f"{scale}.yaml")
    return _load_path(Path(scale).resolve())


def _load_path(path: Path) -> ScaleKey:
    if not path.is_file():
        raise ScaleKeyError(f"scale key file not found: {path}")
    # the cache is keyed by the file's modification time and size too, so a key
    # edited during a session is read again (the manifest hashes the file as it is)
    stat = path.stat()
    return _read_key(path, stat.st_mtime_ns, stat.st_size)


@cache
def _read_key(path: Path, mtime_ns: int, size: int) -> ScaleKey:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ScaleKeyError(f"scale key {path.name} is not valid YAML: {err}") from None
    if not isinstance(raw, Mapping):
        raise ScaleKeyError(f"scale key {path.name} must be a YAML mapping.")
    try:
        return _build(raw, path.name)
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, ScaleKeyError):
            raise
        raise ScaleKeyError(
            f"scale key {path.name} is malformed ({type(err).__name__}: {err}); "
            "see docs/scoring.md for the key format."
        ) from None


def _fail(name: str, what: str) -> ScaleKeyError:
    return ScaleKeyError(f"scale key {name}: {what}")


def _build(raw: Mapping[str, Any], name: str) -> ScaleKey:
    lo, hi = int(raw["item_range"]["min"]), int(raw["item_range"]["max"])
    if lo >= hi:
        raise _fail(name, f"item_range min {lo} must be below max {hi}.")
    numbers = [int(item["number"]) for item in raw["items"]]
    if numbers != list(range(1, len(numbers) + 1)):
        raise _fail(name, f"items must be numbered 1 to n in order; got {numbers}.")
    columns = [str(item["column"]) for item in raw["items"]]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise _fail(name, f"item columns repeat: {repeated}.")
    domain_of: dict[int, str] = {}
    domains = []
    for dom in raw["domains"]:
        first, last = int(dom["first_item"]), int(dom["last_item"])
        members = range(first, last + 1)
        clash = [n for n in members if n in domain_of or n not in numbers]
        if clash or first > last:
            raise _fail(name, f"domain {dom['key']!r} items {first}-{last} overlap another "
                        f"domain or name unknown items ({clash}).")
        domain_of.update(dict.fromkeys(members, str(dom["key"])))
        domains.append(Domain(str(dom["key"]), str(dom["label"]),
                              tuple(columns[n - 1] for n in members)))
    if len(domain_of) != len(numbers):
        orphans = [n for n in numbers if n not in domain_of]
        raise _fail(name, f"items {orphans} belong to no domain.")
    items = tuple(ScaleItem(n, columns[n - 1], str(item.get("label") or ""), domain_of[n])
                  for n, item in zip(numbers, raw["items"], strict=True))
    if str(raw["key"]) != Path(name).stem:
        raise _fail(name, f"key {raw['key']!r} must equal the file name stem.")
    total = (int(raw["total_range"]["min"]), int(raw["total_range"]["max"]))
    if total != (len(items) * lo, len(items) * hi):
        raise _fail(name, f"total_range {total} must equal the number of items "
                    f"({len(items)}) times the item range ({lo}, {hi}).")
    bands = tuple((str(b["band"]), float(b["from"])) for b in raw["bands"])
    bounds = [b for _, b in bands]
    if not bands or bounds[0] != total[0] or bounds != sorted(set(bounds)) \
            or not all(math.isfinite(b) and b <= total[1] for b in bounds):
        raise _fail(name, f"bands must ascend strictly from the lowest total {total[0]} "
                    f"and stay within the total range; got {bounds}.")
    proration = str(raw["missing"]["proration"])
    if proration not in PRORATION_METHODS:
        raise _fail(name, f"missing.proration must be one of {PRORATION_METHODS}; "
                    f"got {proration!r}.")
    return ScaleKey(key=str(raw["key"]), title=str(raw.get("title", raw["key"])),
                    item_min=lo, item_max=hi, total_min=total[0], total_max=total[1],
                    items=items, domains=tuple(domains), bands=bands, proration=proration)

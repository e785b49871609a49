"""Questionnaire instrument keys: read a YAML key from ``data_schema/instruments/``.

A key is the only place an instrument's items, item range, reversed items, scorings and
missing-item rule are stated; scoring reads them from here and restates none of them.
The checks of a key's contents are in :mod:`crtstats.scales._instrument_checks`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from os import PathLike
from pathlib import Path

import yaml

from crtstats._resources import schema_dir
from crtstats.exceptions import ScaleKeyError
from crtstats.scales._instrument_checks import build_instrument
from crtstats.scales._instrument_types import InstrumentItem, InstrumentKey, Scoring

__all__ = ["InstrumentItem", "InstrumentKey", "Scoring", "available_instruments",
           "load_instrument"]


def _instruments_dir() -> Path:
    return schema_dir() / "instruments"


def available_instruments() -> tuple[str, ...]:
    """The names of the instrument keys shipped in ``data_schema/instruments/``.

    Returns
    -------
    tuple of str
        Key names (file stems), sorted; each can be passed to :func:`load_instrument`.

    Examples
    --------
    >>> available_instruments()
    ('csq8', 'ghq12')
    """
    return tuple(sorted(path.stem for path in _instruments_dir().glob("*.yaml")))


def load_instrument(name_or_path: str | PathLike[str] | InstrumentKey) -> InstrumentKey:
    """Load and check an instrument key, by name or from a YAML file.

    Parameters
    ----------
    name_or_path
        The name of a key shipped in ``data_schema/instruments/`` (``"csq8"``,
        ``"ghq12"``), the path of a key file of the same format (a name ending in
        ``.yaml`` or ``.yml``, or any :class:`os.PathLike`), or a loaded key (returned
        as it is).

    Returns
    -------
    InstrumentKey
        The checked key.

    Raises
    ------
    ScaleKeyError
        If no such key exists, the file is not YAML, or the key is malformed; the
        message names the file and the bad entry (an unknown entry, items not numbered
        1 to n, a repeated column, a reversed item that is not an item, a recoding that
        does not cover the item range, a total range that does not follow from the
        items, a caseness threshold outside the total range...).

    Notes
    -----
    An item score ``x`` (a whole number from ``item_range.min`` to ``max``) is first
    reversed if its item is listed in ``reverse`` (``min + max - x``), then recoded by
    the scoring's ``recode`` table (if any), and the total is the sum over the items.
    The scoring's ``total_range`` must equal the number of items times the smallest
    and largest recoded item value. ``docs/scoring.md`` describes the format for
    adding an instrument.

    References
    ----------
    Attkisson CC, Zwick R (1982). The Client Satisfaction Questionnaire. Evaluation and
    Program Planning 5:233-237. Goldberg D, Williams P (1988). A User's Guide to the
    General Health Questionnaire. Windsor: NFER-Nelson.

    Examples
    --------
    >>> key = load_instrument("ghq12")
    >>> key.n_items, key.item_min, key.item_max, key.scoring_names
    (12, 0, 3, ('ghq', 'likert'))
    >>> ghq = key.scoring()
    >>> ghq.total_min, ghq.total_max, ghq.caseness_threshold
    (0.0, 12.0, 4.0)

    The key is plain YAML; in R, ``yaml::read_yaml("data_schema/instruments/ghq12.yaml")``
    reads the same structure.
    """
    if isinstance(name_or_path, InstrumentKey):
        return name_or_path
    if isinstance(name_or_path, str) and not name_or_path.lower().endswith((".yaml", ".yml")):
        if name_or_path not in available_instruments():
            raise ScaleKeyError(
                f"unknown instrument {name_or_path!r}; shipped keys: "
                f"{list(available_instruments())}. Pass the path of a key file to use "
                "another instrument (docs/scoring.md describes the format)."
            )
        return _load_path(_instruments_dir() / f"{name_or_path}.yaml")
    if not isinstance(name_or_path, str | PathLike):
        raise ScaleKeyError(
            f"an instrument is a key name, the path of a key file or an InstrumentKey; got "
            f"{type(name_or_path).__name__}."
        )
    return _load_path(Path(name_or_path).resolve())


@cache
def _load_path(path: Path) -> InstrumentKey:
    if not path.is_file():
        raise ScaleKeyError(f"instrument key file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ScaleKeyError(f"instrument key {path.name} is not valid YAML: {err}") from None
    if not isinstance(raw, Mapping):
        raise ScaleKeyError(f"instrument key {path.name} must be a YAML mapping; got "
                            f"{type(raw).__name__}.")
    return build_instrument(raw, path.name)


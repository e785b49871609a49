"""Writing tables to files: the one place where crtstats.tables touches the disk."""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Literal, get_args

from crtstats._options import check_option
from crtstats.exceptions import DataFileError, InvalidParameterError
from crtstats.tables._table import Table

__all__ = ["TableFormat", "write_table"]

#: File formats :func:`write_table` writes, by file extension.
TableFormat = Literal["md", "html", "tex", "csv", "docx"]
_ALL: tuple[TableFormat, ...] = get_args(TableFormat)


def _render(table: Table, fmt: str) -> bytes:
    if fmt == "docx":
        return table.to_docx()
    text = {"md": table.to_markdown, "html": table.to_html, "tex": table.to_latex,
            "csv": table.to_csv}[fmt]()
    return text.encode("utf-8")


def write_table(
    table: Table,
    folder: str | PathLike[str],
    stem: str,
    *,
    formats: Sequence[TableFormat] = _ALL,
) -> dict[str, Path]:
    """Write a table in several formats as ``<folder>/<stem>.<ext>``.

    Parameters
    ----------
    table
        The table to write.
    folder
        An existing folder.
    stem
        File name without extension (no path separators).
    formats
        Extensions to write, from ``md``, ``html``, ``tex``, ``csv``, ``docx``
        (default: all).

    Returns
    -------
    dict of str to Path
        The path written for each format.

    Raises
    ------
    InvalidParameterError
        If a format is unknown or repeated, or ``stem`` is empty or holds a separator.
    DataFileError
        If ``folder`` does not exist or a file cannot be written.

    Notes
    -----
    Text is UTF-8 with ``\\n`` line ends; the bytes depend only on the table, so two
    runs give identical files.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> from crtstats.tables import Column, Table
    >>> t = Table(pd.DataFrame({"x": [1.5]}), [Column("x", ("x",), decimals=1)])
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     sorted(p.name for p in write_table(t, folder, "t", formats=["md", "csv"]).values())
    ['t.csv', 't.md']

    In R: ``gt::gtsave()`` or ``flextable::save_as_docx()``.
    """
    formats = list(formats)
    for fmt in formats:
        check_option("formats", fmt, _ALL)
    if len(set(formats)) != len(formats) or not formats:
        raise InvalidParameterError(f"formats must be distinct and non-empty; got {formats}.")
    if not stem or any(sep in stem for sep in ("/", "\\")) or stem in (".", ".."):
        raise InvalidParameterError(
            f"stem must be a plain file name without extension; got {stem!r}."
        )
    root = Path(folder)
    if not root.is_dir():
        raise DataFileError(f"folder {str(root)!r} does not exist; create it first.")
    written: dict[str, Path] = {}
    for fmt in formats:
        path = root / f"{stem}.{fmt}"
        try:
            path.write_bytes(_render(table, fmt))
        except OSError as err:
            raise DataFileError(f"cannot write table file {str(path)!r}: {err}") from err
        written[fmt] = path
    return written

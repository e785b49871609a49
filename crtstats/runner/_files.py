"""Writing rendered tables and figures to files (tables and plots only render)."""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from crtstats._options import check_option
from crtstats.exceptions import InvalidParameterError
from crtstats.io import write_files
from crtstats.plots import FIGURE_FORMATS, FigureFormat, render_figure
from crtstats.tables import FORMATS, Paper, Table, TableFormat

__all__ = ["save_figure", "write_table"]


def _checked_formats(formats: Sequence[str], allowed: Sequence[str]) -> None:
    chosen = list(formats)
    for fmt in chosen:
        check_option("formats", fmt, allowed)
    if not chosen or len(set(chosen)) != len(chosen):
        raise InvalidParameterError(f"formats must be distinct and non-empty; got {chosen}.")


def write_table(
    table: Table,
    folder: str | PathLike[str],
    stem: str,
    *,
    formats: Sequence[TableFormat] = FORMATS,
    paper: Paper = "a4",
) -> dict[str, Path]:
    """Write a table in several formats as ``<folder>/<stem>.<ext>``.

    Parameters
    ----------
    table
        The table to write (rendered by :meth:`crtstats.Table.render`).
    folder
        An existing folder.
    stem
        File name without extension (no path separators).
    formats
        Extensions to write, from ``md``, ``html``, ``tex``, ``csv``, ``docx``
        (default: all).
    paper
        ``"a4"`` (default) or ``"letter"``: the page of the Word and LaTeX files.

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
    _checked_formats(formats, FORMATS)
    if not stem or any(sep in stem for sep in ("/", "\\")) or stem in (".", ".."):
        raise InvalidParameterError(
            f"stem must be a plain file name without extension; got {stem!r}."
        )
    return write_files(Path(folder) / stem, {fmt: table.render(fmt, paper=paper)
                                                 for fmt in formats})


def save_figure(
    fig: Figure | Axes,
    path_stem: str | PathLike[str],
    *,
    formats: Sequence[FigureFormat] = ("png", "svg"),
    dpi: float = 150.0,
) -> dict[str, Path]:
    """Save a figure as ``<path_stem>.<format>`` with reproducible bytes.

    Parameters
    ----------
    fig
        The figure, or axes on it (``ax.figure`` is saved).
    path_stem
        Path without extension; its folder must exist.
    formats
        Formats to write, from ``png``, ``svg``, ``pdf``.
    dpi
        Resolution of raster output.

    Returns
    -------
    dict of str to Path
        The path written for each format.

    Raises
    ------
    InvalidParameterError
        If a format is unknown or repeated, or ``fig`` is not a figure or axes.
    DataFileError
        If the folder does not exist or a file cannot be written.

    Notes
    -----
    The bytes are :func:`crtstats.plots.render_figure`'s: no dates or software names in
    the metadata and a fixed SVG hash salt, so saving the same figure twice gives
    identical files.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from matplotlib.figure import Figure
    >>> fig = Figure()
    >>> _ = fig.add_subplot().plot([0, 1], [0, 1])
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     sorted(p.suffix for p in save_figure(fig, Path(folder) / "f").values())
    ['.png', '.svg']

    In R: ``ggsave()``.
    """
    _checked_formats(formats, FIGURE_FORMATS)
    if not isinstance(fig, Figure | Axes):
        raise InvalidParameterError(
            f"fig must be a matplotlib Figure or Axes; got {type(fig).__name__}."
        )
    stem = Path(path_stem)
    if not stem.parent.is_dir():  # before rendering, which can take a while
        write_files(stem, {})
    return write_files(stem, {fmt: render_figure(fig, fmt, dpi=dpi) for fmt in formats})

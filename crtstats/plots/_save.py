"""Saving figures with reproducible bytes: the one place where crtstats.plots writes files."""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any, Literal, get_args

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from crtstats._options import check_option
from crtstats.exceptions import DataFileError, InvalidParameterError

__all__ = ["FigureFormat", "save_figure"]

#: File formats :func:`save_figure` writes.
FigureFormat = Literal["png", "svg", "pdf"]
_ALL: tuple[str, ...] = get_args(FigureFormat)

#: Metadata that would vary between runs (dates, software versions), removed.
_METADATA: dict[str, dict[str, Any]] = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None},
}


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
    Dates and software names are left out of the metadata and SVG element ids come
    from a fixed hash salt, so saving the same figure twice gives identical files.

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
    formats = list(formats)
    for fmt in formats:
        check_option("formats", fmt, _ALL)
    if not formats or len(set(formats)) != len(formats):
        raise InvalidParameterError(f"formats must be distinct and non-empty; got {formats}.")
    figure = fig.figure if isinstance(fig, Axes) else fig
    if not isinstance(figure, Figure):
        raise InvalidParameterError(
            f"fig must be a matplotlib Figure or Axes; got {type(fig).__name__}."
        )
    stem = Path(path_stem)
    if not stem.parent.is_dir():
        raise DataFileError(f"folder {str(stem.parent)!r} does not exist; create it first.")
    written: dict[str, Path] = {}
    with mpl.rc_context({"svg.hashsalt": "crtstats", "pdf.compression": 6}):
        for fmt in formats:
            path = stem.parent / f"{stem.name}.{fmt}"
            try:
                figure.savefig(path, format=fmt, dpi=dpi, metadata=_METADATA[fmt])
            except OSError as err:
                raise DataFileError(f"cannot write figure file {str(path)!r}: {err}") from err
            written[fmt] = path
    return written

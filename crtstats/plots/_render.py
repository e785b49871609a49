"""Figures as file bytes, reproducibly: plots render, they never write files."""

from __future__ import annotations

import io
import re
from typing import Any, Literal, get_args

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from crtstats._options import check_option
from crtstats.exceptions import InvalidParameterError

__all__ = ["FIGURE_FORMATS", "FigureFormat", "render_figure"]

#: File formats :func:`render_figure` renders.
FigureFormat = Literal["png", "svg", "pdf"]
FIGURE_FORMATS: tuple[FigureFormat, ...] = get_args(FigureFormat)

#: Metadata that would vary between runs (dates, software versions), removed.
_METADATA: dict[str, dict[str, Any]] = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None},
}


#: A clip-path id of matplotlib's SVG writer, where it is defined or used.
_CLIP_ID = re.compile(rb'(?<=id=")p[0-9a-f]{10}(?=")|(?<=url\(#)p[0-9a-f]{10}(?=\))')


def _stable_clip_ids(svg: bytes) -> bytes:
    """``svg`` with its clip-path ids numbered in order of first appearance.

    matplotlib names a clip rectangle by a hash of its float bounds, and those bounds
    can differ in their last bits between processes (the same figure rendered under
    another ``PYTHONHASHSEED`` gave other ids and identical pixels), so the ids are
    renamed ``clip0``, ``clip1``, ... in document order instead.
    """
    names: dict[bytes, bytes] = {}

    def rename(match: re.Match[bytes]) -> bytes:
        return names.setdefault(match.group(0), b"clip%d" % len(names))

    return _CLIP_ID.sub(rename, svg)


def render_figure(fig: Figure | Axes, fmt: FigureFormat, *, dpi: float = 150.0) -> bytes:
    """The figure as the bytes of a ``png``, ``svg`` or ``pdf`` file, reproducibly.

    Parameters
    ----------
    fig
        The figure, or axes on it (``ax.figure`` is rendered).
    fmt
        ``"png"``, ``"svg"`` or ``"pdf"``.
    dpi
        Resolution of raster output.

    Returns
    -------
    bytes
        The file's content; the same figure always gives the same bytes.

    Raises
    ------
    InvalidParameterError
        If ``fmt`` is unknown or ``fig`` is not a figure or axes.

    Notes
    -----
    Dates and software names are left out of the metadata and SVG element ids come
    from a fixed hash salt, so rendering the same figure twice gives identical bytes.
    :func:`crtstats.save_figure` writes the bytes to files.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> fig = Figure()
    >>> _ = fig.add_subplot().plot([0, 1], [0, 1])
    >>> render_figure(fig, "svg") == render_figure(fig, "svg")
    True

    In R: ``ggsave()`` without the file.
    """
    check_option("fmt", fmt, FIGURE_FORMATS)
    figure = fig.figure if isinstance(fig, Axes) else fig
    if not isinstance(figure, Figure):
        raise InvalidParameterError(
            f"fig must be a matplotlib Figure or Axes; got {type(fig).__name__}."
        )
    buffer = io.BytesIO()
    with mpl.rc_context({"svg.hashsalt": "crtstats", "pdf.compression": 6}):
        figure.savefig(buffer, format=fmt, dpi=dpi, metadata=_METADATA[fmt])
    return _stable_clip_ids(buffer.getvalue()) if fmt == "svg" else buffer.getvalue()

"""The :class:`Table` type: tidy numbers plus the metadata that says how to show them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import pandas as pd

from crtstats._options import check_option
from crtstats.exceptions import InvalidParameterError
from crtstats.tables import _format as fmt
from crtstats.tables._layout import PAPERS, Paper

__all__ = ["FORMATS", "STYLES", "Column", "Style", "Table", "TableFormat"]

#: The formats a :class:`Table` renders to (:meth:`Table.render`), by file extension.
TableFormat = Literal["md", "html", "tex", "csv", "docx"]
FORMATS: tuple[TableFormat, ...] = get_args(TableFormat)

#: How a displayed column turns its source values into text.
Style = Literal[
    "text", "integer", "number", "percent", "pvalue", "ci", "interval", "mean_sd",
    "n_percent", "summary",
]
STYLES: tuple[str, ...] = get_args(Style)

#: The statistics a ``summary`` column understands (read from its ``statistic_column``).
Statistic = Literal["n", "n_percent", "mean_sd", "median_iqr"]
STATISTICS: tuple[str, ...] = get_args(Statistic)

#: Number of source columns each style reads, in order (``summary``: 2, or 3 for
#: rows of ``median_iqr``, which read the upper quartile from the third).
_N_SOURCES: dict[str, tuple[int, ...]] = {
    "text": (1,), "integer": (1,), "number": (1,), "percent": (1,), "pvalue": (1,),
    "ci": (3,), "interval": (2,), "mean_sd": (2,), "n_percent": (2,), "summary": (2, 3),
}

#: Data columns that would identify a service user; a Table refuses to hold them.
IDENTIFIER_COLUMNS = frozenset({"person_id", "respondent_id", "staff_id", "nhs_number", "name",
                                "date_of_birth"})


@dataclass(frozen=True)
class Column:
    """One displayed column: which data columns it reads and how it writes them.

    Parameters
    ----------
    label
        Header text.
    sources
        Data columns read, in the order the style expects: one for ``text``,
        ``integer``, ``number``, ``percent`` (a proportion 0-1) and ``pvalue``;
        ``(estimate, low, high)`` for ``ci``; ``(low, high)`` for ``interval``;
        ``(mean, sd)`` for ``mean_sd``; ``(count, proportion)`` for ``n_percent``;
        ``(value, spread)`` or ``(value, spread, upper)`` for ``summary`` (the
        third is needed by rows of statistic ``median_iqr``: median, lower and upper
        quartile).
    style
        One of :data:`STYLES`.
    decimals
        Decimal places (for ``pvalue``: places, below which ``< 0.001`` is shown;
        for ``percent`` and ``n_percent``: places of the percentage).
    statistic_column
        For ``summary`` only: the data column naming each row's statistic
        (``n``, ``n_percent``, ``mean_sd`` or ``median_iqr``), so one column can hold
        counts in some rows and means or medians in others, as baseline tables do.
    key
        A name for the column that is unique in the table (defaults to ``label``);
        needed when two columns share a label under different groups (``N`` under
        both arms). Column groups and :meth:`Table.formatted` use it.
    decimals_column
        Optional data column giving the decimal places row by row (where it is not
        missing), for columns that mix measures of different precision.
    mark_column
        Optional data column of text appended to a shown cell after a space where it
        is not empty (a footnote marker such as a dagger, row by row).

    Raises
    ------
    InvalidParameterError
        If the style is unknown, the number of sources does not fit the style,
        ``decimals`` is not a whole number >= 0, or ``statistic_column`` is given
        without style ``summary`` (or missing with it).

    Notes
    -----
    Formatting acts on text only. With ``d`` decimals a value ``x`` is written as
    ``x`` rounded to ``d`` places (Python's correctly rounded ``f`` format), ``-0``
    written as ``0``; a p-value below :math:`10^{-d}` as ``< 10^{-d}``; an interval as
    ``low to high`` ("to" because a dash reads as a minus sign next to negative limits).

    References
    ----------
    Cole TJ. Too many digits: the presentation of numerical data. Arch Dis Child
    2015;100:608-9.

    Examples
    --------
    >>> Column("Estimate (95% CI)", ("estimate", "conf_low", "conf_high"), "ci").render(
    ...     {"estimate": 0.9712, "conf_low": -1.0204, "conf_high": 2.9688}, na_rep="")
    '0.97 (-1.02 to 2.97)'

    In R: ``gtsummary::style_number()``, ``style_pvalue()`` and ``glue`` do this job.
    """

    label: str
    sources: tuple[str, ...]
    style: Style = "number"
    decimals: int = 2
    statistic_column: str | None = None
    key: str | None = None
    decimals_column: str | None = None
    mark_column: str | None = None

    @property
    def name(self) -> str:
        """The column's unique name: ``key`` if given, else ``label``."""
        return self.key if self.key is not None else self.label

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", tuple(self.sources))
        check_option("style", self.style, STYLES)
        if len(self.sources) not in _N_SOURCES[self.style]:
            counts = " or ".join(map(str, _N_SOURCES[self.style]))
            raise InvalidParameterError(
                f"column {self.label!r}: style {self.style!r} reads "
                f"{counts} source column(s); got {list(self.sources)}."
            )
        if not isinstance(self.decimals, int) or self.decimals < 0:
            raise InvalidParameterError(
                f"column {self.label!r}: decimals must be a whole number >= 0; "
                f"got {self.decimals!r}."
            )
        if (self.style == "summary") != (self.statistic_column is not None):
            raise InvalidParameterError(
                f"column {self.label!r}: statistic_column is required with style "
                f"'summary' and only there; got style {self.style!r} and "
                f"statistic_column {self.statistic_column!r}."
            )

    @property
    def numeric(self) -> bool:
        """Whether the column holds numbers (right-aligned when rendered)."""
        return self.style != "text"

    def render(self, row: Mapping[str, Any], *, na_rep: str) -> str:
        """The text of this column for one data row (with its mark, if any)."""
        text = self._render(row, na_rep=na_rep)
        if self.mark_column is not None and text and text != na_rep:
            mark = row[self.mark_column]
            if not fmt.is_missing(mark) and str(mark):
                text = f"{text} {mark}"
        return text

    def _render(self, row: Mapping[str, Any], *, na_rep: str) -> str:
        values = [row[s] for s in self.sources]
        d = self.decimals
        if self.decimals_column is not None and not fmt.is_missing(row[self.decimals_column]):
            d = int(row[self.decimals_column])
        style = self.style
        if style == "summary":
            assert self.statistic_column is not None  # checked in __post_init__
            statistic = row[self.statistic_column]
            check_option(f"{self.statistic_column} (row statistic)", statistic, STATISTICS)
            if statistic == "median_iqr" and len(values) < 3:
                raise InvalidParameterError(
                    f"column {self.label!r}: a median_iqr row needs three sources "
                    f"(median, lower and upper quartile); the column has {list(self.sources)}."
                )
            style = {"n": "integer", "median_iqr": "ci"}.get(statistic, statistic)
            values = values[:1] if statistic == "n" else values
        if style == "text":
            return na_rep if fmt.is_missing(values[0]) else str(values[0])
        if style == "integer":
            return fmt.format_integer(values[0], na_rep=na_rep)
        if style == "number":
            return fmt.format_number(values[0], d, na_rep=na_rep)
        if style == "percent":
            return fmt.format_percent(values[0], d, na_rep=na_rep)
        if style == "pvalue":
            return fmt.format_pvalue(values[0], d, na_rep=na_rep)
        if style == "ci":
            return fmt.format_ci(values[0], values[1], values[2], d, na_rep=na_rep)
        if style == "interval":
            return fmt.format_interval(values[0], values[1], d, na_rep=na_rep)
        if style == "mean_sd":
            return fmt.format_mean_sd(values[0], values[1], d, na_rep=na_rep)
        return fmt.format_n_percent(values[0], values[1], d, na_rep=na_rep)


class Table:
    """A tidy numeric DataFrame with the metadata to render it for publication.

    The numbers in :attr:`data` are kept at full precision; rounding, interval and
    p-value styles are properties of the displayed :class:`Column` objects and act
    only on the rendered text. :meth:`render` is the one dispatcher to the formats
    (``to_markdown`` and the like are its text forms); every format works from the
    same :meth:`formatted` cells, so the formats cannot disagree. A table computes and
    renders; writing files is :func:`crtstats.write_table`'s job.

    Parameters
    ----------
    data
        One row per table row; any columns (numbers, text). Columns that identify a
        person (``person_id``...) are refused.
    columns
        The displayed columns, in order.
    title
        Caption.
    column_groups
        Spanning headers: a mapping from group label to the names (``key`` or
        ``label``) of the adjacent displayed columns it spans.
    footnotes
        Notes printed under the table.
    row_group
        A data column whose value changes start a new section (a heading row).
    row_group_label
        The reader's name of the sections (``"Outcome"``), the header of the first
        column of the CSV, where each row carries its section; by default the name of
        the ``row_group`` column.
    suppressed
        ``(row position, data column)`` cells withheld for disclosure control; a
        displayed cell reading any of them shows ``suppression_marker``. Builders set
        these cells to missing in ``data`` too, so the number is not kept.
    suppression_marker
        Text shown in a suppressed cell (e.g. ``"<5"``).
    na_rep
        Text shown for a missing value.
    label
        The LaTeX ``\\label`` key (e.g. ``"tab:effects"``); by default ``tab:`` and
        the first words of the title.

    Returns
    -------
    Table
        An immutable-by-convention table: ``data`` returns a copy, and the renderers
        are pure functions of the table.

    Raises
    ------
    InvalidParameterError
        If a column reads a data column that does not exist, a group names unknown or
        non-adjacent columns, names repeat, a suppressed cell is outside the data, or
        ``data`` holds a person identifier.

    Notes
    -----
    Rendering is deterministic: the same table gives byte-identical output in every
    format (no dates or random ids; the Word file has fixed timestamps).

    References
    ----------
    Campbell MK, et al. Consort 2010 statement: extension to cluster randomised
    trials. BMJ 2012;345:e5661.

    Examples
    --------
    >>> frame = pd.DataFrame({"term": ["arm"], "est": [0.9712], "lo": [-1.02],
    ...                       "hi": [2.9688], "p": [0.3412]})
    >>> table = Table(frame, [Column("Term", ("term",), "text"),
    ...                       Column("Estimate (95% CI)", ("est", "lo", "hi"), "ci"),
    ...                       Column("p", ("p",), "pvalue", decimals=3)],
    ...               title="Primary outcome")
    >>> print(table.to_markdown(), end="")
    **Primary outcome**
    <BLANKLINE>
    | Term |    Estimate (95% CI) |     p |
    |:-----|---------------------:|------:|
    | arm  | 0.97 (-1.02 to 2.97) | 0.341 |
    >>> table.data.loc[0, "est"]  # the number underneath is untouched
    np.float64(0.9712)

    In R the same job is done by ``gtsummary``/``gt`` or ``flextable``.
    """

    def __init__(
        self,
        data: pd.DataFrame,
        columns: Sequence[Column],
        *,
        title: str = "",
        column_groups: Mapping[str, Sequence[str]] | None = None,
        footnotes: Iterable[str] = (),
        row_group: str | None = None,
        row_group_label: str | None = None,
        suppressed: Iterable[tuple[int, str]] = (),
        suppression_marker: str = "*",
        na_rep: str = "",
        label: str | None = None,
    ) -> None:
        self._data = data.reset_index(drop=True).copy()
        self.columns: tuple[Column, ...] = tuple(columns)
        self.title = title
        self.footnotes: tuple[str, ...] = tuple(footnotes)
        self.row_group = row_group
        self.row_group_label = row_group_label if row_group_label is not None else row_group
        self.suppressed: frozenset[tuple[int, str]] = frozenset(
            (int(r), str(c)) for r, c in suppressed
        )
        self.suppression_marker = suppression_marker
        self.na_rep = na_rep
        self.label = label
        self.column_groups: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
            (str(k), tuple(v)) for k, v in (column_groups or {}).items()
        )
        self._check()

    def _check(self) -> None:
        known = set(map(str, self._data.columns))
        identifiers = sorted(known & IDENTIFIER_COLUMNS)
        if identifiers:
            raise InvalidParameterError(
                f"table data holds person identifier column(s) {identifiers}; drop them "
                "before building a table: published tables must not identify anyone."
            )
        labels = [c.name for c in self.columns]
        if not labels or len(set(labels)) != len(labels):
            raise InvalidParameterError(
                f"column names (key, else label) must be present and distinct; got {labels}."
            )
        needed = [s for c in self.columns for s in c.sources]
        needed += [c.statistic_column for c in self.columns if c.statistic_column]
        needed += [c.decimals_column for c in self.columns if c.decimals_column]
        needed += [c.mark_column for c in self.columns if c.mark_column]
        needed += [self.row_group] if self.row_group else []
        needed += [c for _, c in self.suppressed]
        missing = sorted({s for s in needed if s not in known})
        if missing:
            raise InvalidParameterError(
                f"table columns read data column(s) {missing} that the data does not "
                f"have; the data has {sorted(known)}."
            )
        self._check_groups(labels)
        outside = sorted(r for r, _ in self.suppressed if not 0 <= r < len(self._data))
        if outside:
            raise InvalidParameterError(
                f"suppressed cells name row position(s) {outside}; the data has "
                f"{len(self._data)} rows (positions 0 to {len(self._data) - 1})."
            )

    def _check_groups(self, labels: list[str]) -> None:
        taken: set[str] = set()
        for group, members in self.column_groups:
            positions = [labels.index(m) for m in members if m in labels]
            if len(positions) != len(members) or not members:
                raise InvalidParameterError(
                    f"column group {group!r} names columns {list(members)}; the table's "
                    f"columns are {labels}."
                )
            if positions != list(range(positions[0], positions[0] + len(positions))):
                raise InvalidParameterError(
                    f"column group {group!r} must span adjacent columns in order; got "
                    f"{list(members)}."
                )
            if taken & set(members):
                raise InvalidParameterError(
                    f"column group {group!r} overlaps another group on "
                    f"{sorted(taken & set(members))}."
                )
            taken |= set(members)

    # -- data --------------------------------------------------------------------------
    @property
    def data(self) -> pd.DataFrame:
        """The tidy numbers behind the table (a copy; full precision)."""
        return self._data.copy()

    def formatted(self) -> pd.DataFrame:
        """The displayed cells as text, one column per :class:`Column` (by ``name``).

        Suppressed cells show :attr:`suppression_marker`. Every renderer uses this.
        """
        cells: dict[str, list[str]] = {c.name: [] for c in self.columns}
        records = [{str(k): v for k, v in r.items()}
                   for r in self._data.to_dict(orient="records")]
        for position, row in enumerate(records):
            for column in self.columns:
                if any((position, s) in self.suppressed for s in column.sources):
                    text = self.suppression_marker
                else:
                    text = column.render(row, na_rep=self.na_rep)
                cells[column.name].append(text)
        return pd.DataFrame(cells, dtype=object)

    def sections(self) -> list[tuple[str | None, pd.DataFrame]]:
        """The formatted cells split at changes of :attr:`row_group` (one part if none)."""
        shown = self.formatted()
        if self.row_group is None:
            return [(None, shown)]
        keys = self._data[self.row_group].tolist()
        parts: list[tuple[str | None, pd.DataFrame]] = []
        start = 0
        for i in range(1, len(keys) + 1):
            if i == len(keys) or keys[i] != keys[start]:
                label = None if fmt.is_missing(keys[start]) else str(keys[start])
                parts.append((label, shown.iloc[start:i].reset_index(drop=True)))
                start = i
        return parts

    def header_rows(self) -> list[list[tuple[str, int]]]:
        """Header rows as ``(text, span)`` cells: the group row (if any), then labels."""
        names = [c.name for c in self.columns]
        rows: list[list[tuple[str, int]]] = []
        if self.column_groups:
            first = {members[0]: (group, len(members)) for group, members in self.column_groups}
            top: list[tuple[str, int]] = []
            i = 0
            while i < len(names):
                group, span = first.get(names[i], ("", 1))
                top.append((group, span))
                i += span
            rows.append(top)
        rows.append([(c.label, 1) for c in self.columns])
        return rows

    def flat_labels(self) -> list[str]:
        """One header line: each label prefixed by its group (``"Control: N"``)."""
        group_of = {m: g for g, members in self.column_groups for m in members}
        return [
            f"{group_of[c.name]}: {c.label}" if c.name in group_of else c.label
            for c in self.columns
        ]

    # -- renderers ---------------------------------------------------------------------
    def render(self, fmt: TableFormat, *, paper: Paper = "a4") -> bytes:
        """The table as the bytes of a file of format ``fmt``: the one format dispatcher.

        Parameters
        ----------
        fmt
            ``"md"``, ``"html"``, ``"tex"``, ``"csv"`` (UTF-8 text with ``\\n`` line
            ends) or ``"docx"`` (a Word document with fixed timestamps).
        paper
            ``"a4"`` (default) or ``"letter"``: the page the Word and LaTeX tables are
            laid out for (width, and landscape when too wide). Other formats ignore it.

        Returns
        -------
        bytes
            Depends only on the table, so two renderings are byte-identical.

        Raises
        ------
        InvalidParameterError
            If ``fmt`` is not one of :data:`FORMATS` or ``paper`` not one of
        :data:`~crtstats.tables.PAPERS`.

        Examples
        --------
        >>> t = Table(pd.DataFrame({"x": [1.5]}), [Column("x", ("x",), decimals=1)])
        >>> t.render("csv")
        b'x\\n1.5\\n'
        """
        check_option("fmt", fmt, FORMATS)
        check_option("paper", paper, PAPERS)
        if fmt == "docx":
            from crtstats.tables._docx import render_docx

            return render_docx(self, paper=paper)
        from crtstats.tables import _render

        if fmt == "tex":
            return _render.render_latex(self, paper=paper).encode("utf-8")
        text = {"md": _render.render_markdown, "html": _render.render_html,
                "csv": _render.render_csv}[fmt](self)
        return text.encode("utf-8")

    def to_markdown(self) -> str:
        """Render as a Markdown pipe table (``render("md")`` as text)."""
        return self.render("md").decode("utf-8")

    def to_html(self) -> str:
        """Render as an HTML ``<table>`` fragment (``render("html")`` as text)."""
        return self.render("html").decode("utf-8")

    def to_latex(self) -> str:
        """Render as a LaTeX ``table`` environment (needs ``\\usepackage{booktabs}``)."""
        return self.render("tex").decode("utf-8")

    def to_csv(self) -> str:
        """Render the displayed cells as CSV text (``table.data`` has the numbers)."""
        return self.render("csv").decode("utf-8")

    def to_docx(self) -> bytes:
        """Render as a Word document; the bytes are reproducible (``render("docx")``)."""
        return self.render("docx")

    def __repr__(self) -> str:
        return (
            f"Table(title={self.title!r}, rows={len(self._data)}, "
            f"columns={[c.name for c in self.columns]})"
        )

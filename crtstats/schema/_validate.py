"""Lazy, total validation of one table against its schema."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pandera.errors as pa_errors

from crtstats._options import check_option
from crtstats.exceptions import (
    FAILURE_COLUMNS,
    InvalidParameterError,
    ReasonCode,
    SchemaValidationError,
)
from crtstats.io import TABLES, convert_column
from crtstats.schema._build import BuiltSchema, build_schema, type_description
from crtstats.schema._hints import layout_hints
from crtstats.schema._items import item_problems

__all__ = ["collect_problems", "failure_frame", "records", "validate"]


def _case(table: str, row: Any, column: Any, value: Any, check: str,
          reason: ReasonCode) -> dict[str, Any]:
    return {"table": table, "row": row, "column": column, "value": value, "check": check,
            "reason_code": str(reason)}


def failure_frame(cases: list[dict[str, Any]] | list[pd.DataFrame]) -> pd.DataFrame:
    """Failure cases (dicts or frames) as one frame with ``FAILURE_COLUMNS``."""
    frames = [c for c in cases if isinstance(c, pd.DataFrame)]
    dicts = [c for c in cases if isinstance(c, dict)]
    parts = [pd.DataFrame(dicts, columns=list(FAILURE_COLUMNS))] + frames
    parts = [p.astype({"row": "Int64", "value": object}) for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=list(FAILURE_COLUMNS)).astype({"row": "Int64"})
    out = pd.concat(parts, ignore_index=True)
    out["row"] = out["row"].astype("Int64")
    return out[list(FAILURE_COLUMNS)]


def _column_problems(frame: pd.DataFrame, built: BuiltSchema
                     ) -> tuple[pd.DataFrame, list[Any]]:
    """Structure problems, and the declared columns read as their declared dtypes."""
    table = built.table
    cases: list[Any] = []
    names = list(frame.columns)
    repeated = sorted({n for n in names if names.count(n) > 1}, key=str)
    for name in repeated:
        cases.append(_case(table, pd.NA, name, pd.NA, "column names must be unique",
                           ReasonCode.DUPLICATE_COLUMN))
    if len(frame) == 0:
        cases.append(_case(table, pd.NA, pd.NA, pd.NA, "the table must have at least one row",
                           ReasonCode.EMPTY_TABLE))
    if not built.extra_columns:
        for name in names:
            if name not in built.fields:
                cases.append(_case(table, pd.NA, name, pd.NA, "column not in the schema",
                                   ReasonCode.UNKNOWN_COLUMN))
    work = {}
    for name, field in built.fields.items():
        if name not in names or name in repeated:
            continue
        raw = frame[name]
        conv = convert_column(raw, field, missing_values=built.missing_values)
        work[name] = conv.values.reset_index(drop=True)
        if not conv.ok:
            bad = conv.problems.notna().to_numpy().nonzero()[0]
            cases.append(pd.DataFrame({
                "table": table, "row": bad, "column": name,
                "value": raw.iloc[bad].astype(object).to_numpy(),
                "check": type_description(field),
                "reason_code": conv.problems.iloc[bad].astype(str).to_numpy(),
            }))
    return pd.DataFrame(work, index=pd.RangeIndex(len(frame))), cases


def _absent(name: str, given: list[Any]) -> str:
    """The check text of a missing column, naming a column that differs only in spaces
    or capitals, if there is one."""
    near = [c for c in given if isinstance(c, str) and c != name
            and c.strip().casefold() == name.casefold()]
    if near:
        return f"a required column is absent (found {near[0]!r}: rename it {name!r})"
    joined = [c for c in given if isinstance(c, str) and name in c and (";" in c or "\t" in c)]
    if joined:
        return ("a required column is absent (the header reads as one column: save the file "
                "with commas between fields)")
    return "a required column is absent"


def _translate(err: pa_errors.SchemaErrors, work: pd.DataFrame, built: BuiltSchema,
               given: list[Any]) -> list[Any]:
    """pandera's failure cases in crtstats' vocabulary (``FAILURE_COLUMNS``)."""
    table = built.table
    fc = err.failure_cases
    out: list[Any] = []
    for (context, check, column, number), grp in fc.groupby(
        ["schema_context", "check", "column", "check_number"], dropna=False, sort=False
    ):
        rows = grp["index"]
        if check == "column_in_dataframe":
            for name in grp["failure_case"]:
                out.append(_case(table, pd.NA, name, pd.NA, _absent(name, given),
                                 ReasonCode.MISSING_COLUMN))
            continue
        if check == "not_nullable":
            info_reason, text = ReasonCode.REQUIRED, "a value is required"
        elif context == "DataFrameSchema" and not pd.isna(number):
            info = built.frame_checks[int(number)]
            if column != info.column:
                continue  # one report per row, on the column the rule is about
            info_reason, text = info.reason, info.description
        elif context == "Column" and not pd.isna(number):
            info = built.column_checks[str(column)][int(number)]
            info_reason, text = info.reason, info.description
        else:  # a dtype check: the converted column is not what the schema declares
            out.append(_case(table, pd.NA, column, pd.NA, str(check), ReasonCode.TYPE))
            continue
        idx = rows.astype("int64").to_numpy()
        values = work[column].iloc[idx].astype(object).to_numpy()
        checks: Any = text
        if info_reason == ReasonCode.ENUM:
            checks = [enum_hint(text, v, table, str(column), built) for v in values]
        out.append(pd.DataFrame({
            "table": table, "row": idx, "column": column, "value": values,
            "check": checks, "reason_code": str(info_reason),
        }))
    return out


def enum_hint(text: str, value: Any, table: str, column: str, built: BuiltSchema) -> str:
    """The check of a value outside the allowed set, with the mapping line that would
    declare it (the label itself is never recoded without that declaration)."""
    allowed = built.fields[column].get("constraints", {}).get("enum", [])
    label = str(value)
    near = [a for a in allowed if str(a).strip().casefold() == label.strip().casefold()]
    target = (repr(near[0]) if isinstance(near[0], str) else str(near[0])).replace(
        "'", '"') if near else "..."
    return (f"{text}; to recode it declare [{table}.values.{column}] \"{label}\" = {target} "
            "in the data mapping")


def _key_problems(work: pd.DataFrame, built: BuiltSchema) -> list[Any]:
    """Rows whose primary key (or a ``unique`` field) repeats; rows with an empty key part
    are left to the ``required`` check."""
    keys = [list(built.key)] if built.key else []
    keys += [[n] for n, f in built.fields.items()
             if f.get("constraints", {}).get("unique") and [n] not in keys]
    out: list[Any] = []
    for key in keys:
        if not all(k in work for k in key):
            continue
        sub = work[key]
        dup = (sub.duplicated(keep=False) & sub.notna().all(axis=1)).to_numpy().nonzero()[0]
        if len(dup) == 0:
            continue
        values = list(sub.iloc[dup].astype(object).itertuples(index=False, name=None))
        out.append(pd.DataFrame({
            "table": built.table, "row": dup, "column": ", ".join(key),
            "value": [v if len(key) > 1 else v[0] for v in values],
            "check": f"({', '.join(key)}) must be unique", "reason_code": "duplicate_key",
        }))
    return out


#: Problems of a value that make a count of values meaningless (the root causes).
_ROOT_CAUSES = (ReasonCode.ENUM, ReasonCode.REQUIRED, ReasonCode.TYPE)


def _table_rules(work: pd.DataFrame, built: BuiltSchema, found: pd.DataFrame
                 ) -> list[dict[str, Any]]:
    """Rules on the table as a whole, e.g. at least two teams in every arm. A rule on a
    column with unknown, empty or unreadable values is not checked: those values are
    the root cause, reported on their own (``Intervention``, not "too few teams")."""
    out = []
    for rule in built.table_rules:
        name, least = rule["field"], rule["minimumRowsPerValue"]
        if name not in work:
            continue
        if len(found) and bool((found["column"].eq(name)
                                & found["reason_code"].isin(list(map(str, _ROOT_CAUSES))))
                               .any()):
            continue
        counts = work[name].value_counts()
        labels = built.fields[name].get("constraints", {}).get("enum", list(counts.index))
        for label in labels:
            n = int(counts.get(label, 0))
            if n < least:
                out.append(_case(built.table, pd.NA, name, label,
                                 f"{rule['description']}; {label!r} has {n}",
                                 ReasonCode(rule["name"])))
    return out


def collect_problems(df: pd.DataFrame, *, table: str
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every problem of ``df`` as ``table``, and the frame with declared dtypes.

    The same checks as :func:`validate`, returned instead of raised: ``(data,
    failure_cases)``, where ``failure_cases`` is empty when ``df`` is valid. In ``data``
    an unreadable value of a declared column is ``<NA>`` (it is reported in
    ``failure_cases``), so cross-table checks can run on the rest.
    """
    check_option("table", table, TABLES)
    if not isinstance(df, pd.DataFrame):
        raise InvalidParameterError(
            f"the {table} data must be a pandas DataFrame; got {type(df).__name__}."
        )
    built = build_schema(table)
    work, cases = _column_problems(df, built)
    cases_all: list[Any] = list(cases)
    try:
        built.schema.validate(work, lazy=True)
    except pa_errors.SchemaErrors as err:
        cases_all += _translate(err, work, built, list(df.columns))
    cases_all += _key_problems(work, built)
    items, found_items = item_problems(df, work, table, built.item_columns, built.fields,
                                       built.missing_values)
    cases_all += found_items
    found = layout_hints(failure_frame(cases_all), df, table=table)
    failures = _tidy(failure_frame([found, *map(_one, _table_rules(work, built, found))]),
                     built)
    data = df.copy()
    for name in work.columns:
        data[name] = work[name].set_axis(df.index)
    for name, values in items.items():
        data[name] = values.set_axis(df.index)
    return data, failures


def _one(case: dict[str, Any]) -> pd.DataFrame:
    return failure_frame([case])


def _tidy(failures: pd.DataFrame, built: BuiltSchema) -> pd.DataFrame:
    """Drop ``required`` where the same cell is already a ``type`` problem, and sort."""
    if failures.empty:
        return failures
    unreadable = failures["reason_code"].isin(["type", "not_integer"])
    cells = set(zip(failures.loc[unreadable, "row"], failures.loc[unreadable, "column"],
                    strict=True))
    is_required = failures["reason_code"] == "required"
    shadowed = [r and (row, col) in cells for r, row, col in
                zip(is_required, failures["row"], failures["column"], strict=True)]
    failures = failures.loc[~pd.Series(shadowed, index=failures.index, dtype=bool)]
    order = {name: i for i, name in enumerate(built.fields)}
    position = failures["column"].map(lambda c: order.get(c, len(order)))
    failures = failures.assign(_pos=position).sort_values(
        ["row", "_pos"], na_position="first", kind="stable"
    )
    return failures.drop(columns="_pos").drop_duplicates(
        ["table", "row", "column", "reason_code", "check"]
    ).reset_index(drop=True)


def records(failures: pd.DataFrame) -> list[dict[str, Any]]:
    """Failure cases as dicts, the form ``SchemaValidationError.from_cases`` takes."""
    return [{str(k): v for k, v in r.items()} for r in failures.to_dict("records")]


def validate(df: pd.DataFrame, *, table: str) -> pd.DataFrame:
    """Validate one table against its schema, reporting every problem at once.

    Parameters
    ----------
    df
        The table, as a DataFrame with the schema's column names.
    table
        One of ``teams``, ``fidelity``, ``admissions``, ``service_use``,
        ``user_questionnaires``, ``staff_questionnaires``.

    Returns
    -------
    pandas.DataFrame
        The same rows, in the same order and with the same index and columns, with
        every column of the schema in its declared dtype (``string`` for text and dates,
        ``Int64`` for integers).

    Raises
    ------
    SchemaValidationError
        If anything is wrong; its ``failure_cases`` frame has one row per problem with
        ``table, row, column, value, check, reason_code`` (``row`` is the 0-based
        position in ``df``).
    InvalidParameterError
        If ``table`` is not a table of the data model or ``df`` is not a DataFrame.

    Notes
    -----
    The rules are built from ``data_schema/<table>.schema.json`` (a pandera schema,
    :func:`crtstats.schema.build_schema`): declared type, required values and columns,
    allowed values, minimum and maximum, pattern, unique primary key, row rules (bed
    days are 0 where not admitted) and table rules (at least two teams per arm; not
    checked on a column with unknown, empty or unreadable values, which are the root
    cause and reported as such). Values
    are converted to their declared type only when the conversion is exact
    (:func:`crtstats.io.convert_column`); nothing is trimmed, recased or dropped.
    Cross-table rules and long-format fidelity are handled by
    :func:`crtstats.load_trial`, which calls this for each table.

    References
    ----------
    Frictionless Table Schema, https://specs.frictionlessdata.io/table-schema/

    Examples
    --------
    Like ``pointblank::interrogate()`` or ``validate::confront()`` in R:

    >>> import pandas as pd
    >>> teams = pd.DataFrame({"team_id": ["T1", "T2", "T3", "T4"],
    ...                       "arm": ["intervention", "control", "control", "Control"],
    ...                       "stratum": ["A", "A", "B", "B"]})
    >>> try:
    ...     validate(teams, table="teams")
    ... except SchemaValidationError as err:
    ...     print(err.failure_cases[["row", "column", "value", "reason_code"]])
       row column    value reason_code
    0    3    arm  Control        enum
    """
    data, failures = collect_problems(df, table=table)
    if not failures.empty:
        raise SchemaValidationError.from_cases(records(failures),
                                               subject=f"table {table}")
    return data

"""`read_table` and `check` for Python: a file or a DataFrame in, a DataFrame out."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path

import pandas as pd

from bulkimport.errors import InputError
from bulkimport.face.frames import frame_table, rows_frame
from bulkimport.output.tables import column_labels
from bulkimport.read.sources import ReadOptions, SourceInput, open_source
from bulkimport.rows.columns import parse_map
from bulkimport.rows.normalize import ContactDefaults
from bulkimport.rows.phones import PhonePolicy, check_country
from bulkimport.rows.prepare import CheckedRow, ImportOptions, Verdict, checked_rows, open_sources
from bulkimport.settings import check_delimiter, check_encoding, check_header_row

Data = str | PathLike[str] | pd.DataFrame  # what check and subscribe take
CHECK_COLUMNS = ("status", "phone", "reason", "problem")


def read_table(
    path: str | PathLike[str],
    *,
    sheet: str | int | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    header_row: int | None = None,
) -> pd.DataFrame:
    """Return a spreadsheet's rows as a DataFrame of text, exactly as `check` reads them.

    Every cell is a ``str`` (leading zeros and ``+`` kept, a whole-number cell
    as its digits, an empty cell ""); the columns are the header's names (a
    repeated one as ``Name (again)``, a nameless one as ``column N``); the index,
    named ``row``, is the spreadsheet row number (header row 1, blank rows left
    out but counted). The header is found as `check` finds it (title rows above
    it are skipped) unless ``header_row`` names it; in a file with no phone or
    contact id column it is the first non-blank row.

    ``sheet`` is a sheet name or its number from 1; ``encoding`` and
    ``delimiter`` are for CSV files, when detection guesses wrong. Raises
    :class:`~bulkimport.errors.InputError` for a file that cannot be read.
    """
    options = import_options(
        sheet=sheet, encoding=encoding, delimiter=delimiter, header_row=header_row
    )
    try:
        with open_sources([Path(path)], options) as (source,):
            return rows_frame(source.table.header, source.table.rows)
    except InputError:
        if header_row is not None:
            raise
    # No row maps to contact columns: read it all the same, the header being the first row.
    with open_source(Path(path), options.read) as table:
        return rows_frame(table.header, table.rows)


def check(
    data: Data,
    *,
    country: str | None = None,
    mapping: Mapping[str, str] | None = None,
    sheet: str | int | None = None,
    header_row: int | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    allow_possible: bool = False,
    mobile_only: bool = False,
    allow_duplicates: bool = False,
) -> pd.DataFrame:
    """Return every row with what `bulkimport check` says of it; sends nothing.

    ``data`` is a file (any format `check` reads) or a DataFrame (its cells read
    as text: see :func:`subscribe`). The result has ``status`` (valid, invalid
    or duplicate), ``phone`` (the number as it would be sent), ``reason`` and
    ``problem`` (a stable code such as ``phone_invalid``), then the input's own
    columns (one named like a result column gets `` (again)``). It is indexed
    like the input: a DataFrame's own index, or a file's row numbers. Blank rows
    are not people and are left out.

    ``country`` reads national numbers (``PH``: 0917 123 4567); ``mapping``
    maps a header to a field as ``--map`` does (``{"Mobile No.": "fullPhoneNumber",
    "Dept": "custom:Department", "Notes": "ignore"}``); ``sheet``,
    ``header_row``, ``encoding`` and ``delimiter`` say how to read a file;
    ``allow_possible``, ``mobile_only`` and ``allow_duplicates`` are the
    flags of the same names. Raises :class:`~bulkimport.errors.InputError`
    for a file or an option that cannot be used.
    """
    options = import_options(
        country=country,
        mapping=mapping,
        sheet=sheet,
        header_row=header_row,
        encoding=encoding,
        delimiter=delimiter,
        allow_possible=allow_possible,
        mobile_only=mobile_only,
        allow_duplicates=allow_duplicates,
    )
    source, options = source_input(data, options)
    with open_sources([source], options) as mapped:
        checked = list(checked_rows(mapped, options))
        if isinstance(data, pd.DataFrame):
            return _checked_frame(checked, data, frame_numbers(source))
        # The file's cells as read_table gives them (its header may lie below title rows).
        originals = rows_frame(mapped[0].table.header, (c.source_row for c in checked))
    return _checked_frame(checked, originals, {n: at for at, n in enumerate(originals.index)})


def import_options(
    *,
    country: str | None = None,
    mapping: Mapping[str, str] | None = None,
    sheet: str | int | None = None,
    header_row: int | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    allow_possible: bool = False,
    mobile_only: bool = False,
    allow_duplicates: bool = False,
    groups: Sequence[int] = (),
    organization: int | None = None,
) -> ImportOptions:
    """Return ImportOptions from the face's arguments, checked as the CLI checks its flags."""
    overrides = tuple(parse_map(f"{header}={target}") for header, target in (mapping or {}).items())
    return ImportOptions(
        read=ReadOptions(
            sheet=None if sheet is None else str(sheet),
            encoding=check_encoding(encoding, "encoding"),
            delimiter=check_delimiter(delimiter, "delimiter"),
        ),
        overrides=overrides,
        phones=PhonePolicy(
            country=check_country(country) if country else None,
            allow_possible=allow_possible,
            mobile_only=mobile_only,
        ),
        allow_duplicates=allow_duplicates,
        defaults=ContactDefaults(groups=tuple(groups), organization_id=organization),
        header_row=check_header_row(header_row, "header_row"),
    )


def source_input(
    data: Data, options: ImportOptions, *, name: str | None = None
) -> tuple[SourceInput, ImportOptions]:
    """Return what the stages read for ``data`` (a file, or the frame's cells as text).

    A frame's columns are its header: the options that say how to read a file
    do not apply to it and are refused. ``name`` names a frame in the ledger.
    """
    if not isinstance(data, pd.DataFrame):
        if name is not None:
            raise InputError(
                "source names a DataFrame in the ledger: a file is recorded under its path, "
                "so leave source out."
            )
        return Path(data), options
    given = [
        name
        for name, value in (
            ("sheet", options.read.sheet),
            ("encoding", options.read.encoding),
            ("delimiter", options.read.delimiter),
            ("header_row", options.header_row),
        )
        if value is not None
    ]
    if given:
        raise InputError(
            f"{', '.join(given)} say how to read a file: a DataFrame's columns are its header "
            "and its cells are read as they are, so leave them out."
        )
    # A frame's header is its columns: never searched for among its rows.
    return frame_table(data, name), dataclasses.replace(options, header_row=1)


def frame_numbers(source: SourceInput) -> dict[int, int]:
    """Return {row number: position in the frame} of a frame's table."""
    if isinstance(source, Path):
        return {}
    return {number: at for at, (number, _) in enumerate(source.rows)}


def _checked_frame(
    checked: Sequence[CheckedRow], originals: pd.DataFrame, positions: Mapping[int, int]
) -> pd.DataFrame:
    """Return the check columns beside the original ones, for the rows checked."""
    at = [positions[item.source_row.row] for item in checked]
    own = originals.iloc[at]
    labels = column_labels([*CHECK_COLUMNS, *(str(c) for c in own.columns)])
    verdicts = pd.DataFrame(
        [[c.verdict.value, c.phone, c.reason, _problem(c)] for c in checked],
        columns=pd.Index(list(CHECK_COLUMNS)),
        index=own.index,
        dtype=str,
    )
    # Only a name that clashes changes: the others stay as given (an int label stays an int).
    names = [
        column if label == str(column) else label
        for column, label in zip(own.columns, labels[len(CHECK_COLUMNS) :], strict=True)
    ]
    renamed = own.set_axis(pd.Index(names), axis=1)
    result = pd.concat([verdicts, renamed], axis=1)
    result.attrs = dict(originals.attrs)
    return result


def _problem(checked: CheckedRow) -> str:
    if checked.code is not None:
        return checked.code.value
    return "duplicate" if checked.verdict is Verdict.DUPLICATE else ""

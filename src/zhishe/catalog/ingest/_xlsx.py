"""XLSX reading with openpyxl in read-only mode: the first sheet, as text.

The header is the first row of the sheet that has a value. Merged cells are refused: in the header
they hide column names, below it they leave cells empty that look filled. Read-only worksheets do
not expose merged ranges, so the sheet's XML is scanned for <mergeCell ref="..."> in one
streaming pass (the element comes after the cell data).
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path
from typing import Any

import pyarrow as pa

from zhishe.catalog.ingest._header import clean_names, column_letter
from zhishe.catalog.ingest.errors import IngestError

__all__ = ["read_xlsx"]

_MERGE_RE = re.compile(rb"<(?:\w+:)?mergeCell\b[^>]*?\bref=\"([A-Za-z]+[0-9]+(?::[A-Za-z]+[0-9]+)?)\"")
_CHUNK = 1 << 20
_OVERLAP = 512
_MIDNIGHT = dt.time(0, 0)


def _merged_ranges(path: Path, sheet_xml: str) -> list[str]:
    """The merged ranges ("B1:C1") of one sheet, read from its XML without building a tree."""
    found: dict[str, None] = {}
    with zipfile.ZipFile(path) as archive, archive.open(sheet_xml) as stream:
        carry = b""
        while chunk := stream.read(_CHUNK):
            data = carry + chunk
            for match in _MERGE_RE.finditer(data):
                found.setdefault(match.group(1).decode("ascii").upper())
            carry = data[-_OVERLAP:]
    return list(found)


def cell_text(value: Any) -> str | None:
    """The text of a cell value as the import rules read it.

    Numbers that are whole (Excel stores every number as a double) are written without ".0";
    a date-time at exactly midnight is written as a date; booleans as true/false.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None and value.time() == _MIDNIGHT:
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _check_merges(ranges: list[str], header_row: int) -> None:
    header_merges: list[str] = []
    data_merges: list[str] = []
    for ref in ranges:
        from openpyxl.utils.cell import range_boundaries  # imported here: most imports are not XLSX

        _, min_row, _, max_row = range_boundaries(ref)
        if min_row is None or max_row is None or max_row < header_row:
            continue
        (header_merges if min_row <= header_row else data_merges).append(ref)
    if header_merges:
        cells = ", ".join(header_merges)
        raise IngestError(
            "merged_header",
            f"header cells {cells} are merged; unmerge them and give each column its own name",
            ranges=header_merges,
        )
    if data_merges:
        shown = ", ".join(data_merges[:5]) + (" …" if len(data_merges) > 5 else "")
        raise IngestError(
            "merged_cells",
            f"cells {shown} are merged; unmerge them and fill in every cell",
            ranges=data_merges,
        )


def read_xlsx(path: Path) -> pa.Table:
    """The first sheet of a workbook as a table of text (pa.string()) columns."""
    try:
        import openpyxl  # imported here: loading it costs ~0.1 s that CSV imports need not pay

        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise IngestError("invalid_xlsx", f"the XLSX workbook cannot be opened: {exc}") from None
    try:
        if not workbook.worksheets:
            raise IngestError("empty_file", "the workbook has no sheets")
        sheet = workbook.worksheets[0]
        sheet.reset_dimensions()  # do not trust the stored dimension: read every cell there is
        rows = sheet.iter_rows(min_row=1, min_col=1, values_only=True)
        header_row = 0
        header: list[str | None] = []
        for number, cells in enumerate(rows, start=1):
            texts = [cell_text(v) for v in cells]
            if any(t not in (None, "") for t in texts):
                header_row, header = number, texts
                break
        if not header_row:
            raise IngestError("empty_file", f"the first sheet ({sheet.title}) is empty")
        sheet_xml = getattr(sheet, "_worksheet_path", None)
        if sheet_xml:
            _check_merges(_merged_ranges(path, sheet_xml), header_row)
        while header and header[-1] in (None, ""):
            header.pop()
        names = clean_names(header, label=lambda i: f"cell {column_letter(i)}{header_row}")
        width = len(names)
        columns: list[list[str | None]] = [[] for _ in names]
        row = 0
        for number, cells in enumerate(rows, start=header_row + 1):
            texts = [cell_text(v) for v in cells]
            if not any(t not in (None, "") for t in texts):
                continue
            row += 1
            for index in range(width, len(texts)):
                if texts[index] not in (None, ""):
                    cell = f"{column_letter(index)}{number}"
                    raise IngestError(
                        "ragged_row",
                        f"row {row} (sheet row {number}) has a value in cell {cell}, right of the "
                        f"header's last column {column_letter(width - 1)}",
                        row=row,
                        cell=cell,
                    )
            texts += [None] * (width - len(texts))
            for index in range(width):
                columns[index].append(texts[index])
    finally:
        workbook.close()
    arrays = [pa.array(values, pa.string()) for values in columns]
    return pa.Table.from_arrays(arrays, names=names)

"""Tables as downloadable files: CSV (UTF-8 with a BOM, so Excel opens the Chinese right) and XLSX.

XLSX is written with openpyxl (write-only mode). Cells are text or numbers (Decimal, int); text that a
spreadsheet would run as a formula (starting with = + - @) is written with a leading apostrophe in CSV, and always as
a plain string in XLSX; amounts keep their decimals (50.00).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell

Cell = str | int | Decimal | None
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Characters XML 1.0 does not allow (control characters other than tab, newline, carriage return).
_INVALID_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# Characters a sheet title may not hold.
_INVALID_SHEET = re.compile(r"[\\/*?:\[\]]")


def table_csv(rows: Iterable[Sequence[Cell]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow(["" if cell is None else (f"'{cell}" if isinstance(cell, str) and cell.startswith(
            FORMULA_START) else cell) for cell in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def table_xlsx(rows: Iterable[Sequence[Cell]], *, sheet: str = "Sheet1") -> bytes:
    """One sheet written by openpyxl; text cells are always strings (a leading = is never run as a formula)."""
    workbook = Workbook(write_only=True)
    worksheet = workbook.create_sheet(title=_INVALID_SHEET.sub("-", sheet)[:31] or "Sheet1")
    for row in rows:
        cells: list[object] = []
        for value in row:
            if isinstance(value, str):
                cell = WriteOnlyCell(worksheet, value=_INVALID_XML.sub("", value))
                cell.data_type = "s"  # openpyxl would take "=…" as a formula
                cells.append(cell)
            elif isinstance(value, Decimal):
                cell = WriteOnlyCell(worksheet, value=value)  # type: ignore[arg-type]  # openpyxl writes Decimal
                places = max(0, -int(value.as_tuple().exponent))
                cell.number_format = "0." + "0" * places if places else "0"  # shown as it is: 50.00, not 50
                cells.append(cell)
            else:
                cells.append(value)
        worksheet.append(cells)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def xlsx_rows(data: bytes) -> list[list[str]]:
    """The cells of the first sheet as text, row by row, numbers as their format shows them (for tests and
    checks; trailing empty cells are left out)."""
    sheet = load_workbook(io.BytesIO(data), read_only=True).worksheets[0]
    rows = []
    for row in sheet.iter_rows():
        texts = [_shown(cell.value, cell.number_format) for cell in row]
        while texts and texts[-1] == "":
            texts.pop()
        rows.append(texts)
    return rows


def _shown(value: object, number_format: str) -> str:
    if value is None:
        return ""
    if isinstance(value, (int, float)) and number_format.startswith("0."):
        return f"{Decimal(str(value)):.{len(number_format) - 2}f}"
    return str(value)

"""The audit log as a file (CSV with a BOM so Excel reads the Chinese, or XLSX by openpyxl), and its export itself
recorded. Text a spreadsheet would run as a formula is neutralised (CSV: a leading apostrophe; XLSX: string cells).

kameng.suppliers.exports does the same for the supplier reports; audit sits below suppliers in the layers, so it
keeps its own few lines rather than importing them."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from kameng.audit.models import AuditEntry
from kameng.audit.services import audit_record
from kameng.core.errors import ApplicationError

FORMATS = ("csv", "xlsx")
HEADER = ("ID", "时间", "操作人", "操作", "对象类型", "对象 ID", "对象", "修改前", "修改后", "说明", "IP 地址",
          "User-Agent")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_INVALID_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
MAX_EXPORT_ROWS = 100_000


@dataclass(frozen=True)
class AuditFile:
    filename: str
    content_type: str
    content: bytes
    rows: int


def _json(value: object) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def audit_rows(queryset: QuerySet[AuditEntry]) -> Iterator[tuple[str, ...]]:
    for entry in queryset.order_by("id")[:MAX_EXPORT_ROWS].iterator(chunk_size=2000):
        yield (str(entry.pk), timezone.localtime(entry.created_at).strftime("%Y-%m-%d %H:%M:%S"),
               entry.actor_username, entry.action, entry.object_type, entry.object_id, entry.object_repr,
               _json(entry.before), _json(entry.after), entry.message, entry.ip_address or "", entry.user_agent)


def _csv(rows: list[tuple[str, ...]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow([f"'{cell}" if cell.startswith(FORMULA_START) else cell for cell in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _xlsx(rows: list[tuple[str, ...]]) -> bytes:
    workbook = Workbook(write_only=True)
    worksheet = workbook.create_sheet(title="audit")
    for row in rows:
        cells = []
        for value in row:
            cell = WriteOnlyCell(worksheet, value=_INVALID_XML.sub("", value))
            cell.data_type = "s"  # never a formula
            cells.append(cell)
        worksheet.append(cells)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def audit_export(*, queryset: QuerySet[AuditEntry], file_format: str, request: HttpRequest | None) -> AuditFile:
    """The entries of `queryset` (oldest first, at most MAX_EXPORT_ROWS) as a file; the export is an entry too."""
    if file_format not in FORMATS:
        raise ApplicationError("导出格式只能是 csv 或 xlsx", code="format_invalid")
    rows = [HEADER, *audit_rows(queryset)]
    content = _xlsx(rows) if file_format == "xlsx" else _csv(rows)
    audit_record(action="audit.export", request=request, object_type="audit.auditentry",
                 object_repr=f"{len(rows) - 1} 条", after={"format": file_format, "rows": len(rows) - 1})
    content_type = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" if file_format == "xlsx"
                    else "text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    return AuditFile(filename=f"audit-log-{stamp}.{file_format}", content_type=content_type, content=content,
                     rows=len(rows) - 1)

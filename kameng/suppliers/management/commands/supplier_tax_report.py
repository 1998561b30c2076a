"""`manage.py supplier_tax_report --quarter 2026Q4 --format xlsx [--output FILE]`: the quarterly platform tax report
(kameng/suppliers/tax_report.py). The file holds full ID numbers: it is written owner-only (0600) and the export is
logged as made by the command line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from kameng.core.errors import ApplicationError
from kameng.suppliers.tax_report import FORMATS, SENSITIVE_NOTICE, tax_report_export


class Command(BaseCommand):
    help = "Export the quarterly supplier identity and income report for the tax office (sensitive: full ID numbers)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quarter", required=True, help="e.g. 2026Q4")
        parser.add_argument("--format", choices=FORMATS, default="xlsx")
        parser.add_argument("--output", help="file to write (default: the report's own name, here)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = tax_report_export(quarter=options["quarter"], file_format=options["format"],
                                       exported_by_id=None, via="command")
        except ApplicationError as error:
            raise CommandError(error.message) from error
        path = Path(options["output"] or report.filename)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(report.content)
        self.stdout.write(f"{path}: {report.rows} suppliers. {SENSITIVE_NOTICE}")

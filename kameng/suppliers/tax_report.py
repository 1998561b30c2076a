"""The quarterly platform tax report (涉税信息报送, 国务院令第 810 号): each supplier's identity and income.

Per supplier with any settlement, reversal or payout in the quarter (calendar quarter in the shop's time zone,
Asia/Shanghai; a movement belongs to the quarter of its journal's time): its name, unified social credit code,
legal person's name and ID number, then income (the gross cost credited by settlements), refunds (cost reversed),
tax withheld (代扣代缴, net of tax given back on reversals), net income (income − refunds − tax) and paid out (its
withdrawals paid by bank transfer in the quarter).

Identity comes from the supplier's company profile when onboarding has recorded one (`_company_identity`); until
then, and for a supplier without a company, from its owner's verified real name (kameng.accounts). The tax office
needs the ID number in full, so the file holds it in full: producing it is a staff-only act, logged
(`TaxReportExport`: who, when, how) and the file is named and marked sensitive. Pages show the number masked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Sum

from kameng.accounts.identity import mask_id_number
from kameng.accounts.models import RealName, RealNameStatus
from kameng.core.errors import ApplicationError
from kameng.core.money import ZERO, money
from kameng.ledger.models import Journal, JournalKind
from kameng.suppliers.exports import Cell, table_csv, table_xlsx
from kameng.suppliers.models import Supplier, SupplierWithdrawal, TaxReportExport
from kameng.suppliers.statements import movements_between

QUARTER_RE = re.compile(r"^(\d{4})Q([1-4])$")
FORMATS = ("xlsx", "csv")
SENSITIVE_NOTICE = "敏感信息：含完整身份证号，仅供向税务机关报送，请勿外传"
HEADER = ["供货商名称", "统一社会信用代码", "法定代表人/实名姓名", "证件号码", "身份来源", "收入（结算成本）",
          "退款冲回", "代扣税费", "净收入", "已打款"]


@dataclass(frozen=True)
class SupplierIdentity:
    company_name: str
    credit_code: str
    person_name: str
    id_number: str
    source: str  # "company_profile" | "real_name" | "missing"

    @property
    def masked_id_number(self) -> str:
        return mask_id_number(self.id_number) if self.id_number else ""


@dataclass(frozen=True)
class TaxReportRow:
    supplier_id: int
    identity: SupplierIdentity
    income: Decimal
    refunds: Decimal
    tax_withheld: Decimal
    net_income: Decimal
    paid_out: Decimal


def quarter_bounds(quarter: str) -> tuple[datetime, datetime]:
    """"2026Q4" → [2026-10-01 00:00, 2027-01-01 00:00) in the shop's time zone."""
    match = QUARTER_RE.match(quarter.strip().upper())
    if match is None:
        raise ApplicationError("季度格式应为 2026Q4 这样的形式", code="quarter_invalid")
    year, number = int(match.group(1)), int(match.group(2))
    zone = ZoneInfo(settings.TIME_ZONE)
    start = datetime(year, 3 * number - 2, 1, tzinfo=zone)
    end = datetime(year + 1, 1, 1, tzinfo=zone) if number == 4 else datetime(year, 3 * number + 1, 1, tzinfo=zone)
    return start, end


def _company_identity(supplier: Supplier) -> SupplierIdentity | None:
    """The company profile recorded at onboarding (company name, credit code, legal person's real name), when
    there is one. Onboarding plugs its selector in here."""
    return None


def supplier_identity(*, supplier: Supplier) -> SupplierIdentity:
    identity = _company_identity(supplier)
    if identity is not None:
        return identity
    real_name = RealName.objects.filter(user_id=supplier.owner_id, status=RealNameStatus.VERIFIED).first()
    if real_name is None or not real_name.id_number:
        return SupplierIdentity(company_name=supplier.name, credit_code="", person_name="", id_number="",
                                source="missing")
    return SupplierIdentity(company_name=supplier.name, credit_code="", person_name=str(real_name.name or ""),
                            id_number=str(real_name.id_number), source="real_name")


def tax_report_rows(*, quarter: str) -> list[TaxReportRow]:
    start, end = quarter_bounds(quarter)
    sums = movements_between(supplier_ids=None, start=start, end=end)
    paid_numbers = Journal.objects.filter(kind=JournalKind.SUPPLIER_WITHDRAWAL_PAID, created_at__gte=start,
                                          created_at__lt=end).values_list("reference", flat=True)
    paid = dict(SupplierWithdrawal.objects.filter(number__in=list(paid_numbers)).values("supplier_id")
                .order_by().annotate(total=Sum("amount")).values_list("supplier_id", "total"))
    rows = []
    for supplier in Supplier.objects.filter(pk__in=set(sums) | set(paid)).order_by("pk"):
        figures = sums.get(supplier.pk, {})
        income = money(figures.get("gross_cost") or ZERO)
        refunds = money(figures.get("reversed_cost") or ZERO)
        tax = money((figures.get("tax_withheld") or ZERO) - (figures.get("reversed_tax") or ZERO))
        rows.append(TaxReportRow(supplier_id=supplier.pk, identity=supplier_identity(supplier=supplier),
                                 income=income, refunds=refunds, tax_withheld=tax,
                                 net_income=income - refunds - tax, paid_out=money(paid.get(supplier.pk) or ZERO)))
    return rows


SOURCE_LABELS = {"company_profile": "企业资料", "real_name": "账号实名", "missing": "缺失"}


def tax_report_table(rows: list[TaxReportRow], *, quarter: str) -> list[list[Cell]]:
    table: list[list[Cell]] = [[f"{quarter} 平台内供货商身份及收入信息", SENSITIVE_NOTICE], list[Cell](HEADER)]
    for row in rows:
        identity = row.identity
        table.append([identity.company_name, identity.credit_code, identity.person_name, identity.id_number,
                      SOURCE_LABELS[identity.source], row.income, row.refunds, row.tax_withheld, row.net_income,
                      row.paid_out])
    return table


@dataclass(frozen=True)
class TaxReportFile:
    filename: str
    content_type: str
    content: bytes
    rows: int


def tax_report_export(*, quarter: str, file_format: str, exported_by_id: int | None, via: str) -> TaxReportFile:
    """The report as a file, its export logged (who, when, how). Staff only: the callers check that."""
    if file_format not in FORMATS:
        raise ApplicationError("导出格式只能是 xlsx 或 csv", code="format_invalid")
    quarter = quarter.strip().upper()
    rows = tax_report_rows(quarter=quarter)
    table = tax_report_table(rows, quarter=quarter)
    TaxReportExport.objects.create(quarter=quarter, file_format=file_format, exported_by_id=exported_by_id, via=via,
                                   rows=len(rows))
    if file_format == "xlsx":
        content = table_xlsx(table, sheet=quarter)
        content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        content, content_type = table_csv(table), "text/csv; charset=utf-8"
    return TaxReportFile(filename=f"SENSITIVE-supplier-tax-report-{quarter}.{file_format}",
                         content_type=content_type, content=content, rows=len(rows))

"""Building suppliers at each onboarding step, for the onboarding, console and IDOR tests."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from pytest_django.fixtures import Settings

from kameng.accounts.models import User
from kameng.suppliers.documents import supplier_document_upload
from kameng.suppliers.models import (
    DocumentKind,
    Supplier,
    SupplierAgreement,
    SupplierDocument,
    SupplierProfile,
    SupplierStatus,
)
from kameng.suppliers.onboarding import (
    agreement_accept,
    supplier_legal_person_verify,
    supplier_profile_save,
)
from tests.accounts.ids import id_number
from tests.factories import SupplierFactory, UserFactory

# The example of GB 32100-2015 itself, and the same code with its check character changed.
VALID_CREDIT_CODE = "91350100M000100Y43"
WRONG_CHECK_CREDIT_CODE = "91350100M000100Y44"
LEGAL_PERSON_NAME = "张三丰"
LEGAL_PERSON_ID = id_number(sequence="123")

PDF_BYTES = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG_BYTES = b"\xff\xd8\xff\xe0" + b"\x00" * 32


@pytest.fixture(autouse=True)
def private_documents(settings: Settings, tmp_path: Path) -> Path:
    directory = tmp_path / "private-documents"
    settings.KAMENG_SUPPLIER_DOCUMENTS_DIR = directory
    return directory


def draft_supplier(*, owner: User | None = None) -> Supplier:
    return SupplierFactory.create(status=SupplierStatus.DRAFT, owner=owner or UserFactory.create())


def profile_save(supplier: Supplier, **changes: str) -> SupplierProfile:
    data = {"company_name": "杭州卡盟科技有限公司", "credit_code": VALID_CREDIT_CODE,
            "legal_person_name": LEGAL_PERSON_NAME, "contact_name": "李四", "contact_phone": "13812345678",
            "business_scope": "游戏点卡、话费充值", **changes}
    return supplier_profile_save(supplier=supplier, **data)


def upload(supplier: Supplier, kind: str = DocumentKind.BUSINESS_LICENCE, data: bytes = PDF_BYTES,
           name: str = "licence.pdf", product_id: int | None = None) -> SupplierDocument:
    return supplier_document_upload(supplier=supplier, kind=kind, product_id=product_id,
                                    upload=SimpleUploadedFile(name, data, content_type="application/pdf"))


def agreement_publish(version: str = "v1", *, days_ago: int = 1) -> SupplierAgreement:
    return SupplierAgreement.objects.create(version=version, text=f"供货商协议 {version} 正文",
                                            published_at=timezone.now() - timedelta(days=days_ago))


def complete_supplier(*, owner: User | None = None) -> Supplier:
    """A DRAFT supplier with everything required done (nothing missing)."""
    supplier = draft_supplier(owner=owner)
    profile_save(supplier)
    supplier_legal_person_verify(supplier=supplier, id_number=LEGAL_PERSON_ID)
    upload(supplier, DocumentKind.BUSINESS_LICENCE)
    upload(supplier, DocumentKind.INDUSTRY_AUTHORISATION, data=PNG_BYTES, name="auth.png")
    agreement = SupplierAgreement.objects.order_by("-published_at").first() or agreement_publish()
    agreement_accept(supplier=supplier, agreement_id=agreement.pk, ip_address="127.0.0.1")
    return supplier

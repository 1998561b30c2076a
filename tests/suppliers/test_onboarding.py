from __future__ import annotations

import stat
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from pytest_django.fixtures import Settings

from kameng.accounts.models import RealName, RealNameStatus
from kameng.accounts.services import realname_verify
from kameng.core.errors import ApplicationError, ConflictError
from kameng.suppliers.models import (
    DocumentKind,
    Supplier,
    SupplierDocument,
    SupplierProfile,
    SupplierReview,
    SupplierStatus,
)
from kameng.suppliers.onboarding import (
    MissingItem,
    agreement_accept,
    legal_person_is_verified,
    onboarding_missing,
    parse_credit_code,
    supplier_legal_person_verify,
    supplier_submit,
)
from tests.accounts.ids import id_number
from tests.factories import SkuFactory, SupplierFactory, UserFactory
from tests.suppliers.onboarding_helpers import (
    JPEG_BYTES,
    LEGAL_PERSON_ID,
    LEGAL_PERSON_NAME,
    PDF_BYTES,
    PNG_BYTES,
    VALID_CREDIT_CODE,
    WRONG_CHECK_CREDIT_CODE,
    agreement_publish,
    complete_supplier,
    draft_supplier,
    private_documents,
    profile_save,
    upload,
)

pytestmark = pytest.mark.django_db
__all__ = ["private_documents"]  # the autouse fixture


# --- applying --------------------------------------------------------------------------------------------------

def test_a_buyer_applies_and_gets_a_draft_supplier(client: Client) -> None:
    user = UserFactory.create()
    client.force_login(user)

    assert client.get("/supplier/apply/").status_code == 200
    response = client.post("/supplier/apply/", {"name": "  甲  供货 "})

    assert response.status_code == 302
    assert response["Location"] == "/supplier/company/"
    supplier = Supplier.objects.get(owner=user)
    assert (supplier.name, supplier.status) == ("甲 供货", SupplierStatus.DRAFT)
    assert client.get("/supplier/apply/")["Location"] == "/supplier/"  # once is enough
    assert Supplier.objects.count() == 1


def test_applying_needs_a_login(client: Client) -> None:
    response = client.post("/supplier/apply/", {"name": "甲"})

    assert response.status_code == 302
    assert "/login/" in response["Location"]
    assert Supplier.objects.count() == 0


def test_applying_without_a_name_is_refused(client: Client) -> None:
    client.force_login(UserFactory.create())

    response = client.post("/supplier/apply/", {"name": " "})

    assert response.status_code == 400
    assert "请填写供货商名称" in response.content.decode()
    assert Supplier.objects.count() == 0


# --- 统一社会信用代码 ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("code", [VALID_CREDIT_CODE, "91350100m000100y43", " 91350100M000 100Y43 "])
def test_a_valid_credit_code_is_accepted_and_normalised(code: str) -> None:
    assert parse_credit_code(code) == VALID_CREDIT_CODE


@pytest.mark.parametrize(("code", "error"), [
    (WRONG_CHECK_CREDIT_CODE, "credit_code_checksum"),
    ("91350100M000100Y4", "credit_code_format"),  # 17 characters
    ("91350100M000100I43", "credit_code_format"),  # I is not in the alphabet
    ("", "credit_code_format"),
])
def test_an_invalid_credit_code_is_refused(code: str, error: str) -> None:
    with pytest.raises(ApplicationError) as refused:
        parse_credit_code(code)

    assert refused.value.code == error


def test_every_wrong_check_character_is_refused() -> None:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    wrong = [VALID_CREDIT_CODE[:17] + char for char in alphabet if char != VALID_CREDIT_CODE[17]]

    refused = 0
    for code in wrong:
        with pytest.raises(ApplicationError):
            parse_credit_code(code)
        refused += 1

    assert refused == 30


# --- company data ---------------------------------------------------------------------------------------------

def test_personal_data_is_encrypted_at_rest_and_masked_on_the_page(client: Client) -> None:
    supplier = draft_supplier()
    profile = profile_save(supplier)
    client.force_login(supplier.owner)

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT contact_phone, legal_person_name FROM {SupplierProfile._meta.db_table}")
        phone_raw, name_raw = cursor.fetchone()
    body = client.get("/supplier/company/").content.decode()

    assert b"13812345678" not in bytes(phone_raw)
    assert LEGAL_PERSON_NAME.encode() not in bytes(name_raw)
    assert profile.contact_phone == "13812345678"
    assert "138****5678" in body
    assert "13812345678" not in body
    assert "张*丰" in body
    assert LEGAL_PERSON_NAME not in body


def test_the_company_form_refuses_a_wrong_credit_code_and_keeps_nothing(client: Client) -> None:
    supplier = draft_supplier()
    client.force_login(supplier.owner)

    response = client.post("/supplier/company/", {
        "company_name": "甲公司", "credit_code": WRONG_CHECK_CREDIT_CODE, "legal_person_name": "张三",
        "contact_name": "李四", "contact_phone": "13812345678"})

    assert response.status_code == 400
    assert "统一社会信用代码校验位不正确" in response.content.decode()
    assert SupplierProfile.objects.count() == 0


def test_blank_personal_fields_keep_their_saved_values(client: Client) -> None:
    supplier = draft_supplier()
    profile_save(supplier)
    client.force_login(supplier.owner)

    response = client.post("/supplier/company/", {"company_name": "乙公司", "credit_code": VALID_CREDIT_CODE,
                                                  "legal_person_name": "", "contact_name": "", "contact_phone": ""})

    assert response.status_code == 302
    profile = SupplierProfile.objects.get(supplier=supplier)
    assert (profile.company_name, profile.contact_phone, profile.legal_person_name) == (
        "乙公司", "13812345678", LEGAL_PERSON_NAME)


# --- what is missing, submitting --------------------------------------------------------------------------------

def test_each_step_removes_its_item_from_what_is_missing() -> None:
    agreement = agreement_publish()
    supplier = draft_supplier()
    everything = [MissingItem.PROFILE, MissingItem.LEGAL_PERSON, MissingItem.BUSINESS_LICENCE,
                  MissingItem.INDUSTRY_AUTHORISATION, MissingItem.AGREEMENT]
    assert onboarding_missing(supplier=supplier) == everything

    profile_save(supplier)
    assert onboarding_missing(supplier=supplier) == everything[1:]
    supplier_legal_person_verify(supplier=supplier, id_number=LEGAL_PERSON_ID)
    assert onboarding_missing(supplier=supplier) == everything[2:]
    upload(supplier, DocumentKind.BUSINESS_LICENCE)
    assert onboarding_missing(supplier=supplier) == everything[3:]
    upload(supplier, DocumentKind.INDUSTRY_AUTHORISATION, data=JPEG_BYTES, name="auth.jpg")
    assert onboarding_missing(supplier=supplier) == everything[4:]
    agreement_accept(supplier=supplier, agreement_id=agreement.pk, ip_address="10.0.0.1")
    assert onboarding_missing(supplier=supplier) == []


def test_submitting_with_items_missing_lists_them_and_changes_nothing(client: Client) -> None:
    agreement_publish()
    supplier = draft_supplier()
    profile_save(supplier)
    client.force_login(supplier.owner)

    overview = client.get("/supplier/").content.decode()
    response = client.post("/supplier/submit/", follow=True)

    body = response.content.decode()
    assert "完成法定代表人实名认证" in overview
    assert "上传营业执照" in overview
    assert ("资料还不完整，请先：完成法定代表人实名认证；上传营业执照；上传行业授权文件；"
            "阅读并同意最新版供货商协议") in body
    supplier.refresh_from_db()
    assert supplier.status == SupplierStatus.DRAFT
    assert SupplierReview.objects.count() == 0


def test_a_complete_supplier_submits_for_review(client: Client) -> None:
    supplier = complete_supplier()
    client.force_login(supplier.owner)

    response = client.post("/supplier/submit/")

    assert response.status_code == 302
    supplier.refresh_from_db()
    assert supplier.status == SupplierStatus.PENDING_REVIEW
    review = SupplierReview.objects.get()
    assert (review.from_status, review.to_status, review.staff_id) == ("draft", "pending_review", None)
    assert 'data-testid="supplier-pending"' in client.get("/supplier/").content.decode()


def test_company_data_cannot_change_while_in_review() -> None:
    supplier = complete_supplier()
    supplier_submit(supplier=supplier)

    with pytest.raises(ConflictError) as refused:
        profile_save(supplier, company_name="改名")

    assert refused.value.code == "supplier_not_editable"
    assert SupplierProfile.objects.get().company_name == "杭州卡盟科技有限公司"


# --- documents --------------------------------------------------------------------------------------------------

def _stored_files(directory: Path) -> list[Path]:
    return sorted(directory.iterdir()) if directory.exists() else []


def test_a_document_is_stored_privately_outside_the_public_media(private_documents: Path) -> None:
    supplier = draft_supplier()

    document = upload(supplier)

    files = _stored_files(private_documents)
    assert [file.name for file in files] == [document.stored_name]
    assert files[0].read_bytes() == PDF_BYTES
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(private_documents.stat().st_mode) == 0o700
    assert not files[0].resolve().is_relative_to(Path(django_settings.MEDIA_ROOT).resolve())
    assert (document.content_type, document.size, document.original_name) == ("application/pdf", len(PDF_BYTES),
                                                                               "licence.pdf")


def test_the_default_documents_directory_is_not_under_media_root() -> None:
    from kameng.settings import base

    assert not Path(base.KAMENG_SUPPLIER_DOCUMENTS_DIR).resolve().is_relative_to(Path(base.MEDIA_ROOT).resolve())


def test_the_type_comes_from_the_bytes_not_the_name() -> None:
    supplier = draft_supplier()

    document = upload(supplier, data=PDF_BYTES, name="really-a-pdf.png")

    assert document.content_type == "application/pdf"
    assert document.stored_name.endswith(".pdf")


@pytest.mark.parametrize(("data", "name"), [
    (b"<html><script>alert(1)</script></html>", "licence.pdf"),
    (b"GIF89a" + b"\x00" * 20, "licence.png"),
    (b"PK\x03\x04" + b"\x00" * 20, "licence.jpg"),
])
def test_a_file_of_another_type_is_refused_and_nothing_is_stored(private_documents: Path, data: bytes,
                                                                 name: str) -> None:
    supplier = draft_supplier()

    with pytest.raises(ApplicationError) as refused:
        upload(supplier, data=data, name=name)

    assert refused.value.code == "document_type"
    assert SupplierDocument.objects.count() == 0
    assert _stored_files(private_documents) == []


def test_an_oversize_file_is_refused_with_a_clear_message(client: Client, settings: Settings,
                                                          private_documents: Path) -> None:
    settings.KAMENG_SUPPLIER_DOCUMENT_MAX_BYTES = 1024 * 1024
    supplier = draft_supplier()
    client.force_login(supplier.owner)
    big = SimpleUploadedFile("big.pdf", PDF_BYTES + b"0" * (1024 * 1024), content_type="application/pdf")

    response = client.post("/supplier/documents/", {"kind": DocumentKind.BUSINESS_LICENCE, "file": big})

    assert response.status_code == 400
    assert "文件超过 1 MB，请压缩后再上传" in response.content.decode()
    assert SupplierDocument.objects.count() == 0
    assert _stored_files(private_documents) == []


def test_the_console_upload_stores_a_document(client: Client) -> None:
    supplier = draft_supplier()
    client.force_login(supplier.owner)

    response = client.post("/supplier/documents/", {
        "kind": DocumentKind.INDUSTRY_AUTHORISATION, "file": SimpleUploadedFile("a.png", PNG_BYTES)})

    assert response.status_code == 302
    document = SupplierDocument.objects.get()
    assert (document.supplier_id, document.kind, document.content_type) == (
        supplier.pk, DocumentKind.INDUSTRY_AUTHORISATION, "image/png")
    assert "a.png" in client.get("/supplier/company/").content.decode()


def test_a_product_authorisation_names_its_product() -> None:
    supplier = draft_supplier()
    product = SkuFactory.create().product

    with pytest.raises(ApplicationError) as refused:
        upload(supplier, DocumentKind.PRODUCT_AUTHORISATION)
    document = upload(supplier, DocumentKind.PRODUCT_AUTHORISATION, product_id=product.pk)

    assert refused.value.code == "document_product_required"
    assert document.product_id == product.pk
    assert SupplierDocument.objects.count() == 1


def test_the_owner_downloads_its_document_as_an_attachment(client: Client) -> None:
    supplier = draft_supplier()
    document = upload(supplier)
    client.force_login(supplier.owner)

    response = client.get(f"/supplier/documents/{document.pk}/")

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF_BYTES  # type: ignore[attr-defined]
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="licence.pdf"'
    assert response["X-Content-Type-Options"] == "nosniff"


def test_another_supplier_and_a_buyer_get_404_for_a_document(client: Client) -> None:
    document = upload(draft_supplier())

    client.force_login(SupplierFactory.create().owner)
    as_other_supplier = client.get(f"/supplier/documents/{document.pk}/")
    client.force_login(UserFactory.create())
    as_buyer = client.get(f"/supplier/documents/{document.pk}/")

    assert (as_other_supplier.status_code, as_buyer.status_code) == (404, 404)


def test_staff_allowed_to_view_documents_download_them(client: Client) -> None:
    document = upload(draft_supplier())
    staff = UserFactory.create(is_staff=True)
    client.force_login(staff)

    without_permission = client.get(f"/supplier/documents/{document.pk}/")
    staff.user_permissions.add(Permission.objects.get(codename="view_supplierdocument"))
    client.force_login(type(staff).objects.get(pk=staff.pk))
    with_permission = client.get(f"/supplier/documents/{document.pk}/")

    assert without_permission.status_code == 404
    assert with_permission.status_code == 200


# --- the agreement ----------------------------------------------------------------------------------------------

def test_a_new_agreement_version_asks_for_acceptance_again(client: Client) -> None:
    supplier = complete_supplier()
    first = supplier.agreement_acceptances.get()
    client.force_login(supplier.owner)
    assert 'data-testid="supplier-agreement-needed"' not in client.get("/supplier/").content.decode()

    second = agreement_publish("v2", days_ago=0)

    assert onboarding_missing(supplier=supplier) == [MissingItem.AGREEMENT]
    assert 'data-testid="supplier-agreement-needed"' in client.get("/supplier/").content.decode()
    outdated = client.post("/supplier/agreement/", {"agreement_id": first.agreement_id})
    assert outdated.status_code == 409
    assert "协议已更新，请阅读最新版本后再同意" in outdated.content.decode()
    accepted = client.post("/supplier/agreement/", {"agreement_id": second.pk}, REMOTE_ADDR="10.1.2.3")
    assert accepted.status_code == 302
    assert onboarding_missing(supplier=supplier) == []
    acceptance = supplier.agreement_acceptances.get(agreement=second)
    assert (acceptance.version, acceptance.ip_address) == ("v2", "10.1.2.3")
    assert supplier.agreement_acceptances.count() == 2


def test_an_agreement_published_in_the_future_is_not_current_yet() -> None:
    supplier = complete_supplier()

    agreement_publish("v9", days_ago=-3)

    assert onboarding_missing(supplier=supplier) == []


# --- the legal person's real name --------------------------------------------------------------------------------

def test_the_legal_person_is_verified_through_the_local_provider() -> None:
    supplier = draft_supplier()
    profile_save(supplier)

    profile = supplier_legal_person_verify(supplier=supplier, id_number=LEGAL_PERSON_ID)

    real_name = RealName.objects.get(user=supplier.owner)
    assert (real_name.status, real_name.name, real_name.id_number) == (
        RealNameStatus.VERIFIED, LEGAL_PERSON_NAME, LEGAL_PERSON_ID)
    assert profile.legal_person_real_name_id == real_name.pk
    assert legal_person_is_verified(profile)


def test_a_mismatch_leaves_the_legal_person_unverified() -> None:
    supplier = draft_supplier()
    profile_save(supplier)

    with pytest.raises(ApplicationError) as refused:
        supplier_legal_person_verify(supplier=supplier, id_number=id_number(sequence="999"))

    assert refused.value.code == "realname_mismatch"
    assert not legal_person_is_verified(SupplierProfile.objects.get())
    assert MissingItem.LEGAL_PERSON in onboarding_missing(supplier=supplier)


def test_an_account_verified_as_someone_else_cannot_be_the_legal_person() -> None:
    owner = UserFactory.create()
    realname_verify(user_id=owner.pk, name="王五", id_number=id_number(sequence="456"))
    supplier = draft_supplier(owner=owner)
    profile_save(supplier)

    with pytest.raises(ConflictError) as refused:
        supplier_legal_person_verify(supplier=supplier, id_number=LEGAL_PERSON_ID)

    assert refused.value.code == "legal_person_other_identity"
    assert SupplierProfile.objects.get().legal_person_real_name_id is None


def test_an_account_verified_as_the_legal_person_is_linked_without_asking_again() -> None:
    owner = UserFactory.create()
    realname_verify(user_id=owner.pk, name=LEGAL_PERSON_NAME, id_number=LEGAL_PERSON_ID)
    supplier = draft_supplier(owner=owner)
    profile_save(supplier)

    supplier_legal_person_verify(supplier=supplier, id_number=LEGAL_PERSON_ID)

    assert legal_person_is_verified(SupplierProfile.objects.get())
    assert RealName.objects.get(user=owner).attempts == 1  # the buyer's own attempt only


def test_changing_the_legal_person_name_drops_the_verification() -> None:
    supplier = complete_supplier()

    profile_save(supplier, legal_person_name="李小龙")

    assert not legal_person_is_verified(SupplierProfile.objects.get())
    assert onboarding_missing(supplier=supplier) == [MissingItem.LEGAL_PERSON]


def test_the_legal_person_page_verifies_and_then_shows_only_the_masked_name(client: Client) -> None:
    supplier = draft_supplier()
    profile_save(supplier)
    client.force_login(supplier.owner)

    response = client.post("/supplier/company/legal-person/", {"id_number": LEGAL_PERSON_ID})
    body = client.get("/supplier/company/").content.decode()

    assert response.status_code == 302
    assert 'data-testid="legal-person-verified"' in body
    assert LEGAL_PERSON_ID not in body
    assert LEGAL_PERSON_NAME not in body


def test_the_overview_reads_english(client: Client) -> None:
    agreement_publish()
    supplier = draft_supplier()
    profile_save(supplier)
    client.force_login(supplier.owner)
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})

    body = client.get("/supplier/").content.decode()
    refused = client.post("/supplier/submit/", follow=True).content.decode()

    assert "Verify the legal representative&#x27;s real name" in body
    assert "Upload the business licence" in body
    assert "Draft" in body
    assert "资料填写中" not in body
    assert "Not complete yet. Still to do:" in refused

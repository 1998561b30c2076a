"""Card-key import: line parsing, the admin import page (paste and upload), the worker path and its progress."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from kameng.catalog.models import DeliveryKind
from kameng.core.errors import ApplicationError
from kameng.inventory import admin as inventory_admin
from kameng.inventory.batches import MAX_UPLOAD_BYTES, card_key_batch_run, decode_upload
from kameng.inventory.imports import MAX_SECRET_LENGTH, parse_lines
from kameng.inventory.models import CardKey, CardKeyBatch, CardKeyStatus, ImportStatus
from kameng.inventory.services import decrypt_secrets
from kameng.inventory.tasks import import_card_key_batch
from kameng.orders.services import order_checkout
from tests.factories import ProductFactory, SkuFactory, UserFactory, fund_wallet, stock_sku


def _secrets_of(batch: CardKeyBatch) -> list[str]:
    rows = CardKey.objects.filter(batch=batch).order_by("id").values_list("secret_ciphertext", flat=True)
    return decrypt_secrets([bytes(row) for row in rows])


# --- parse_lines ------------------------------------------------------------------------------------------

def test_parse_lines_skips_blank_lines_and_comments() -> None:
    parsed = parse_lines("AAA-1\n\n   \n# 这是注释\nBBB-2\r\n\t\nCCC-3")

    assert parsed.secrets == ["AAA-1", "BBB-2", "CCC-3"]
    assert parsed.total == 3
    assert parsed.invalid == 0


def test_parse_lines_normalises_whitespace() -> None:
    parsed = parse_lines("  AAA  111 \n\tBBB\t\t222\u3000\nCCC\u3000333")

    assert parsed.secrets == ["AAA 111", "BBB 222", "CCC 333"]


def test_parse_lines_counts_over_long_lines_invalid() -> None:
    parsed = parse_lines("OK-1\n" + "X" * (MAX_SECRET_LENGTH + 1) + "\n" + "Y" * MAX_SECRET_LENGTH)

    assert parsed.secrets == ["OK-1", "Y" * MAX_SECRET_LENGTH]
    assert parsed.total == 3
    assert parsed.invalid == 1


def test_parse_lines_strips_byte_order_mark() -> None:
    assert parse_lines("\ufeffAAA-1\nBBB-2").secrets == ["AAA-1", "BBB-2"]


def test_parse_lines_csv_skips_header_and_joins_cells() -> None:
    parsed = parse_lines("卡号,密码\nA001, P001\n\nA002,P002,\n", is_csv=True)

    assert parsed.secrets == ["A001 P001", "A002 P002"]
    assert parsed.total == 2


def test_parse_lines_csv_english_header_after_blank_lines() -> None:
    assert parse_lines("\n\nCard No,Password\nA001,P001\n", is_csv=True).secrets == ["A001 P001"]


def test_parse_lines_csv_keeps_first_row_that_only_looks_like_a_header() -> None:
    parsed = parse_lines("CARD-0001,SECRET-1\nCARD-0002,SECRET-2\n", is_csv=True)

    assert parsed.secrets == ["CARD-0001 SECRET-1", "CARD-0002 SECRET-2"]


def test_parse_lines_text_mode_does_not_skip_first_line() -> None:
    assert parse_lines("卡密\nA001").secrets == ["卡密", "A001"]


# --- uploads ----------------------------------------------------------------------------------------------

def test_decode_upload_reads_utf8_with_bom_and_gbk() -> None:
    assert decode_upload("\ufeff卡号,密码\n".encode()) == "卡号,密码\n"
    assert decode_upload("卡号,密码\n".encode("gbk")) == "卡号,密码\n"


def test_decode_upload_refuses_binary_and_oversized_files() -> None:
    with pytest.raises(ApplicationError) as binary:
        decode_upload(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xff")
    assert binary.value.code == "undecodable_upload"
    with pytest.raises(ApplicationError) as too_big:
        decode_upload(b"a" * (MAX_UPLOAD_BYTES + 1))
    assert too_big.value.code == "upload_too_large"


# --- the admin import page --------------------------------------------------------------------------------

def _import_url(sku_id: int) -> str:
    return reverse("admin:inventory_cardkeybatch_import_sku", args=[sku_id])


@pytest.mark.django_db
def test_import_page_opens_from_changelist_and_per_sku(admin_client: Client) -> None:
    sku = SkuFactory.create()

    assert admin_client.get(reverse("admin:inventory_cardkeybatch_import")).status_code == 200
    page = admin_client.get(_import_url(sku.pk))
    assert page.status_code == 200
    assert "导入卡密" in page.content.decode()
    listing = admin_client.get(reverse("admin:inventory_cardkeybatch_changelist")).content.decode()
    assert reverse("admin:inventory_cardkeybatch_open_import") in listing
    redirect = admin_client.get(reverse("admin:inventory_cardkeybatch_open_import"))
    assert redirect.status_code == 302
    assert redirect["Location"] == reverse("admin:inventory_cardkeybatch_import")


@pytest.mark.django_db
def test_paste_imports_only_new_keys_and_reports_counts(admin_client: Client) -> None:
    sku = SkuFactory.create()
    other_sku = SkuFactory.create()
    stock_sku(sku, 1, prefix="OLD-A")
    stock_sku(other_sku, 1, prefix="OLD-B")  # duplicates are refused across the whole platform
    pasted = "NEW-1\nOLD-A-000000\n  NEW-2  \nOLD-B-000000\nNEW-1\n"

    response = admin_client.post(_import_url(sku.pk), {"sku": sku.pk, "text": pasted})

    batch = CardKeyBatch.objects.get(source_name="粘贴")
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:inventory_cardkeybatch_change", args=[batch.pk])
    assert batch.status == ImportStatus.DONE
    assert (batch.total_lines, batch.processed_lines) == (5, 5)
    assert (batch.imported_count, batch.duplicate_count, batch.invalid_count) == (2, 3, 0)
    assert batch.created_by is not None
    assert batch.created_by.username == "admin"
    assert sorted(_secrets_of(batch)) == ["NEW-1", "NEW-2"]
    assert CardKey.objects.filter(sku=sku).count() == 3
    assert CardKey.objects.count() == 4
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "导入完成：成功 2 条，重复（已拒绝）3 条，无效 0 条"]

    page = admin_client.get(response["Location"]).content.decode()
    assert 'data-count="imported">2<' in page
    assert 'data-count="duplicate">3<' in page
    assert 'data-count="invalid">0<' in page


@pytest.mark.django_db
def test_upload_gbk_csv_with_header(admin_client: Client) -> None:
    sku = SkuFactory.create()
    content = "卡号,密码,备注\nA001,P001,首批\nA002,P002,首批\n".encode("gbk")
    upload = SimpleUploadedFile("点卡.csv", content, content_type="text/csv")

    response = admin_client.post(_import_url(sku.pk), {"sku": sku.pk, "upload": upload, "expires_on": "2030-06-30"})

    assert response.status_code == 302
    batch = CardKeyBatch.objects.get()
    assert batch.source_name == "点卡.csv"
    assert (batch.imported_count, batch.duplicate_count, batch.invalid_count) == (2, 0, 0)
    assert sorted(_secrets_of(batch)) == ["A001 P001 首批", "A002 P002 首批"]
    expiry = CardKey.objects.filter(batch=batch).values_list("expires_at", flat=True).distinct()
    assert [value.isoformat() if value else None for value in expiry] == ["2030-06-30T15:59:59+00:00"]


@pytest.mark.django_db
def test_upload_utf8_bom_txt(admin_client: Client) -> None:
    sku = SkuFactory.create()
    upload = SimpleUploadedFile("keys.txt", "\ufeffK-1\nK-2\n".encode())

    admin_client.post(_import_url(sku.pk), {"sku": sku.pk, "upload": upload})

    assert sorted(_secrets_of(CardKeyBatch.objects.get())) == ["K-1", "K-2"]


@pytest.mark.django_db
@pytest.mark.parametrize(("data", "message"), [
    ({"text": ""}, "没有可导入的内容"),
    ({"text": "\n  \n# 只有注释\n"}, "没有可导入的卡密"),
    ({"upload": ("bad.txt", b"\x00\xff\xfe\xfd binary")}, "无法识别文件编码"),
    ({"upload": ("keys.xlsx", b"K-1\n")}, "只支持 .txt 或 .csv 文件"),
    ({"upload": ("empty.csv", "卡号,密码\n".encode())}, "没有可导入的卡密"),
    ({"text": "K-1", "expires_on": "2020-01-01"}, "有效期至 2020-01-01 已经过去"),
])
def test_bad_input_gets_a_clear_error_and_imports_nothing(admin_client: Client, data: dict[str, object],
                                                           message: str) -> None:
    sku = SkuFactory.create()
    form: dict[str, object] = {"sku": sku.pk}
    for key, value in data.items():
        form[key] = SimpleUploadedFile(value[0], value[1]) if isinstance(value, tuple) else value

    response = admin_client.post(_import_url(sku.pk), form)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert CardKeyBatch.objects.count() == 0
    assert CardKey.objects.count() == 0


@pytest.mark.django_db
def test_upload_over_size_limit_is_refused(admin_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inventory_admin, "MAX_UPLOAD_BYTES", 10)  # stands in for 50 MB
    sku = SkuFactory.create()

    response = admin_client.post(_import_url(sku.pk), {
        "sku": sku.pk, "upload": SimpleUploadedFile("big.txt", b"K-00001\nK-00002\n")})

    assert response.status_code == 200
    assert "文件超过 50 MB" in response.content.decode()
    assert CardKey.objects.count() == 0


@pytest.mark.django_db
def test_import_refused_for_a_product_not_delivered_by_card_key(admin_client: Client) -> None:
    sku = SkuFactory.create(product=ProductFactory.create(delivery_kind=DeliveryKind.DIRECT_TOPUP))

    response = admin_client.post(_import_url(sku.pk), {"sku": sku.pk, "text": "K-1"})

    assert response.status_code == 200
    assert CardKey.objects.count() == 0


@pytest.mark.django_db
def test_keys_expiring_today_are_still_imported(admin_client: Client) -> None:
    sku = SkuFactory.create()
    today = timezone.localdate()

    response = admin_client.post(_import_url(sku.pk), {"sku": sku.pk, "text": "K-1", "expires_on": f"{today:%Y-%m-%d}"})

    assert response.status_code == 302
    expiry = CardKey.objects.get().expires_at
    assert expiry is not None
    assert timezone.localtime(expiry).date() == today


@pytest.mark.django_db
def test_the_import_service_refuses_an_expiry_in_the_past() -> None:
    from kameng.inventory.batches import card_key_import_submit

    sku = SkuFactory.create()
    with pytest.raises(ApplicationError) as refused:
        card_key_import_submit(sku_id=sku.pk, created_by_id=None, text="K-1",
                               expires_at=timezone.now() - timedelta(seconds=1))
    assert refused.value.code == "import_already_expired"
    assert CardKeyBatch.objects.count() == 0


# --- the worker path --------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_over_limit_input_goes_through_the_task_and_finishes(admin_client: Client, settings,
                                                             django_capture_on_commit_callbacks) -> None:
    settings.KAMENG_IMPORT_INLINE_LIMIT = 3
    sku = SkuFactory.create()
    stock_sku(sku, 1, prefix="OLD")
    pasted = "\n".join(["T-1", "T-2", "OLD-000000", "T-3", "T-2", "X" * (MAX_SECRET_LENGTH + 1), "T-4"])

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(_import_url(sku.pk), {"sku": sku.pk, "text": pasted})
    batch = CardKeyBatch.objects.get(source_name="粘贴")
    assert response.status_code == 302
    assert batch.status == ImportStatus.QUEUED
    assert batch.pending_payload is not None
    assert b"T-1" not in bytes(batch.pending_payload)  # stored encrypted
    assert CardKey.objects.filter(batch=batch).count() == 0
    assert len(callbacks) == 1

    callbacks[0]()  # the commit hook enqueues the task, which runs eagerly in tests

    batch.refresh_from_db()
    assert batch.status == ImportStatus.DONE
    assert (batch.total_lines, batch.processed_lines) == (7, 7)
    assert (batch.imported_count, batch.duplicate_count, batch.invalid_count) == (4, 2, 1)
    assert batch.pending_payload is None
    assert batch.finished_at is not None
    assert sorted(_secrets_of(batch)) == ["T-1", "T-2", "T-3", "T-4"]


@pytest.mark.django_db
def test_task_does_not_import_a_finished_batch_again(settings, django_capture_on_commit_callbacks) -> None:
    settings.KAMENG_IMPORT_INLINE_LIMIT = 1
    from kameng.inventory.batches import card_key_import_submit

    sku = SkuFactory.create()
    with django_capture_on_commit_callbacks(execute=True):
        batch = card_key_import_submit(sku_id=sku.pk, created_by_id=None, text="A\nB\nC")
    batch.refresh_from_db()
    assert (batch.status, batch.imported_count) == (ImportStatus.DONE, 3)

    import_card_key_batch.delay(batch.pk)
    import_card_key_batch(batch.pk)

    batch.refresh_from_db()
    assert (batch.imported_count, batch.duplicate_count) == (3, 0)
    assert CardKey.objects.count() == 3


@pytest.mark.django_db
def test_progress_endpoint_returns_batch_state(admin_client: Client, settings) -> None:
    settings.KAMENG_IMPORT_INLINE_LIMIT = 1
    from kameng.inventory.batches import card_key_import_submit

    sku = SkuFactory.create()
    batch = card_key_import_submit(sku_id=sku.pk, created_by_id=None, text="P-1\nP-2\nP-3\nP-4")
    url = reverse("admin:inventory_cardkeybatch_progress", args=[batch.pk])

    queued = json.loads(admin_client.get(url).content)
    assert queued["status"] == "queued"
    assert queued["processed_lines"] == 0
    polled = admin_client.get(url, headers={"HX-Request": "true"})
    fragment = polled.content.decode()
    assert 'hx-trigger="every 1s"' in fragment  # keeps polling while queued
    assert "HX-Refresh" not in polled.headers
    page = admin_client.get(reverse("admin:inventory_cardkeybatch_change", args=[batch.pk])).content.decode()
    assert url in page

    card_key_batch_run(batch_id=batch.pk)

    done = json.loads(admin_client.get(url).content)
    assert done == {"id": batch.pk, "status": "done", "total_lines": 4, "processed_lines": 4,
                    "progress_percent": 100, "imported_count": 4, "duplicate_count": 0, "invalid_count": 0,
                    "error": ""}
    polled = admin_client.get(url, headers={"HX-Request": "true"})
    fragment = polled.content.decode()
    assert "hx-trigger" not in fragment  # polling stops once done
    assert 'data-count="imported">4<' in fragment
    assert polled.headers["HX-Refresh"] == "true"  # the polling page reloads, read-only fields included
    page = admin_client.get(reverse("admin:inventory_cardkeybatch_change", args=[batch.pk])).content.decode()
    assert "排队中" not in page
    assert url not in page  # the reloaded page does not poll (and so does not reload again)


# --- card keys ----------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_card_key_pages_never_contain_a_secret(admin_client: Client) -> None:
    sku = SkuFactory.create()
    secrets = stock_sku(sku, 3, prefix="TOPSECRET-ZQX")
    key = CardKey.objects.filter(sku=sku).first()
    assert key is not None

    listing = admin_client.get(reverse("admin:inventory_cardkey_changelist")).content.decode()
    detail = admin_client.get(reverse("admin:inventory_cardkey_change", args=[key.pk])).content.decode()

    for page in (listing, detail):
        assert "TOPSECRET" not in page
        assert "ZQX" not in page
        assert not any(secret in page for secret in secrets)
    assert f"卡密 #{key.pk}" in detail


@pytest.mark.django_db
def test_void_action_voids_only_available_keys(admin_client: Client) -> None:
    sku = SkuFactory.create()
    stock_sku(sku, 4)
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1)
    sold = CardKey.objects.get(status=CardKeyStatus.SOLD)
    already_void = CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).first()
    assert already_void is not None
    CardKey.objects.filter(pk=already_void.pk).update(status=CardKeyStatus.VOID)
    selected = list(CardKey.objects.values_list("pk", flat=True))

    response = admin_client.post(reverse("admin:inventory_cardkey_changelist"),
                                 {"action": "void_available", "_selected_action": selected})

    assert response.status_code == 302
    statuses = dict(CardKey.objects.values_list("pk", "status"))
    assert statuses[sold.pk] == CardKeyStatus.SOLD
    assert list(statuses.values()).count(CardKeyStatus.VOID) == 3
    assert list(statuses.values()).count(CardKeyStatus.AVAILABLE) == 0
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "已作废 2 条卡密，2 条已预留、已售出或已作废，未改动"]


@pytest.mark.django_db
def test_sweeper_redrives_a_queued_batch_whose_message_was_lost(settings) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from kameng.inventory.batches import card_key_batches_redrive, card_key_import_submit

    settings.KAMENG_IMPORT_INLINE_LIMIT = 1
    sku = SkuFactory.create()
    batch = card_key_import_submit(sku_id=sku.pk, created_by_id=None, text="LOST-1\nLOST-2")  # on_commit never ran
    assert CardKeyBatch.objects.get(pk=batch.pk).status == ImportStatus.QUEUED

    assert card_key_batches_redrive(older_than_seconds=120) == 0  # too fresh: the worker may still pick it up
    CardKeyBatch.objects.filter(pk=batch.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert card_key_batches_redrive(older_than_seconds=120) == 1

    batch.refresh_from_db()
    assert (batch.status, batch.imported_count) == (ImportStatus.DONE, 2)
    assert CardKey.objects.filter(sku=sku).count() == 2
    assert card_key_batches_redrive(older_than_seconds=120) == 0

"""Qualification documents (资质文件) of suppliers: checked, stored privately, read only by their owner and staff.

A file is accepted when its first bytes say PDF, JPEG or PNG (the name and the browser's content type are not
trusted: a ".png" that is really a PDF is stored as the PDF it is, and an HTML page named ".pdf" is refused) and it
is at most KAMENG_SUPPLIER_DOCUMENT_MAX_BYTES. It is written under KAMENG_SUPPLIER_DOCUMENTS_DIR (owner-only, never
under MEDIA_ROOT, which the web server publishes) with a random name; nothing is stored when a check fails, and a
file written for a row that then failed to save is removed.
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from kameng.core.errors import ApplicationError, ConflictError, NotFoundError
from kameng.core.files import PRIVATE_FILE_MODE, private_directory_ensure
from kameng.suppliers.models import DocumentKind, Supplier, SupplierDocument, SupplierStatus

# (magic bytes, content type, extension)
SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"%PDF-", "application/pdf", "pdf"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
)
TYPE_MESSAGE = "只能上传 PDF、JPG 或 PNG 文件（按文件内容识别，改扩展名无效）"
UPLOAD_CLOSED_STATUSES = frozenset({SupplierStatus.REJECTED, SupplierStatus.SUSPENDED})


def documents_directory() -> Path:
    directory = Path(settings.KAMENG_SUPPLIER_DOCUMENTS_DIR)
    private_directory_ensure(directory)
    return directory


def document_path(document: SupplierDocument) -> Path:
    return Path(settings.KAMENG_SUPPLIER_DOCUMENTS_DIR) / document.stored_name


def sniff_content_type(head: bytes) -> tuple[str, str] | None:
    """(content type, extension) from the file's first bytes, or None when it is none of the accepted types."""
    for magic, content_type, extension in SIGNATURES:
        if head.startswith(magic):
            return content_type, extension
    return None


def _max_bytes_message() -> str:
    return f"文件超过 {settings.KAMENG_SUPPLIER_DOCUMENT_MAX_BYTES // (1024 * 1024)} MB，请压缩后再上传"


def supplier_document_upload(*, supplier: Supplier, kind: str, upload: UploadedFile,
                             product_id: int | None = None) -> SupplierDocument:
    """Check and store one uploaded document of `supplier`."""
    if supplier.status in UPLOAD_CLOSED_STATUSES:
        raise ConflictError("当前状态（%(status)s）不能上传资质文件", code="documents_closed",
                            params={"status": supplier.get_status_display()})
    if kind not in DocumentKind.values:
        raise ApplicationError("请选择文件类型", code="document_kind_invalid")
    if kind == DocumentKind.PRODUCT_AUTHORISATION and product_id is None:
        raise ApplicationError("商品授权协议须选择对应的商品", code="document_product_required")
    if kind != DocumentKind.PRODUCT_AUTHORISATION:
        product_id = None
    size = upload.size or 0
    if size == 0:
        raise ApplicationError("文件是空的，请重新选择", code="document_empty")
    if size > settings.KAMENG_SUPPLIER_DOCUMENT_MAX_BYTES:
        raise ApplicationError(_max_bytes_message(), code="document_too_large")
    upload.seek(0)
    sniffed = sniff_content_type(upload.read(16))
    if sniffed is None:
        raise ApplicationError(TYPE_MESSAGE, code="document_type")
    content_type, extension = sniffed
    stored_name = f"{secrets.token_hex(20)}.{extension}"
    path = documents_directory() / stored_name
    digest = hashlib.sha256()
    written = 0
    upload.seek(0)
    try:
        with path.open("xb") as file:
            path.chmod(PRIVATE_FILE_MODE)
            for chunk in upload.chunks():
                written += len(chunk)
                if written > settings.KAMENG_SUPPLIER_DOCUMENT_MAX_BYTES:  # the declared size lied
                    raise ApplicationError(_max_bytes_message(), code="document_too_large")
                digest.update(chunk)
                file.write(chunk)
        with transaction.atomic():
            return SupplierDocument.objects.create(
                supplier=supplier, kind=kind, product_id=product_id, original_name=(upload.name or "")[-200:],
                stored_name=stored_name, content_type=content_type, size=written, sha256=digest.hexdigest())
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def supplier_document_for_reader(*, user_id: int, is_staff: bool, document_id: int) -> SupplierDocument:
    """The document if `user_id` may read it (its supplier's owner, or staff allowed to view documents); otherwise
    NotFoundError, the same answer as for a document that does not exist."""
    document = SupplierDocument.objects.select_related("supplier").filter(pk=document_id).first()
    if document is None or not (is_staff or document.supplier.owner_id == user_id):
        raise NotFoundError("文件不存在", code="document_not_found")
    return document

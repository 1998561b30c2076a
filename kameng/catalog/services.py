"""Writes on the catalogue: a product's picture (set from a staff upload, or removed)."""

from __future__ import annotations

import secrets

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from kameng.catalog.locks import product_lock
from kameng.catalog.models import Product
from kameng.catalog.pictures import PreparedPicture, picture_prepare
from kameng.core.errors import NotFoundError


def _files_delete_after_commit(names: list[str | None]) -> None:
    """Delete replaced picture files once the row no longer names them (never before: a rollback would leave the
    row pointing at nothing)."""
    kept = [name for name in names if name]

    def delete() -> None:
        for name in kept:
            default_storage.delete(name)

    if kept:
        transaction.on_commit(delete)


def product_picture_set(*, product_id: int, data: bytes) -> Product:
    """Check an uploaded picture, store it and its thumbnail as WebP, and put them on the product; the files it
    replaces are deleted. Raises `PictureRejectedError` (nothing stored) for a file that cannot be a picture."""
    return product_picture_store(product_id=product_id, prepared=picture_prepare(data=data))


def product_picture_store(*, product_id: int, prepared: PreparedPicture) -> Product:
    """Store a picture already checked and made (`kameng.catalog.pictures.picture_prepare`, which a form runs to
    show its refusal beside the field) and put it on the product, as `product_picture_set` does."""
    # A new name per upload: a browser or proxy that cached the old picture never shows it for the new one.
    stem = f"products/{product_id}/{secrets.token_hex(8)}"
    picture_name = default_storage.save(f"{stem}.webp", ContentFile(prepared.picture))
    thumbnail_name = default_storage.save(f"{stem}-thumb.webp", ContentFile(prepared.thumbnail))
    try:
        with transaction.atomic():
            product = product_lock(product_id=product_id)
            if product is None:
                raise NotFoundError("商品不存在", code="product_not_found")
            replaced = [product.picture.name, product.thumbnail.name]
            product.picture.name, product.thumbnail.name = picture_name, thumbnail_name
            product.save(update_fields=["picture", "thumbnail", "updated_at"])
            _files_delete_after_commit(replaced)
    except BaseException:
        default_storage.delete(picture_name)
        default_storage.delete(thumbnail_name)
        raise
    return product


def product_picture_remove(*, product_id: int) -> None:
    """Take the product's picture away (the storefront shows the placeholder) and delete its files."""
    with transaction.atomic():
        product = product_lock(product_id=product_id)
        if product is None or not product.picture:
            return
        replaced = [product.picture.name, product.thumbnail.name]
        product.picture.name, product.thumbnail.name = "", ""
        product.save(update_fields=["picture", "thumbnail", "updated_at"])
        _files_delete_after_commit(replaced)

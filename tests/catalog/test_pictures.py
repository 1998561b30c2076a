"""Product pictures: what an upload must be, what is made of it (WebP picture and thumbnail, upright, stripped),
the admin form that takes it, and where the storefront shows it (or the placeholder)."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from kameng.catalog.models import Product
from kameng.catalog.pictures import MAX_PICTURE_BYTES, PictureRejectedError, picture_prepare
from kameng.catalog.services import product_picture_remove, product_picture_set
from tests.factories import ProductFactory, SkuFactory, stock_sku

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def _image(size: tuple[int, int] = (800, 600), image_format: str = "JPEG", mode: str = "RGB",
           **save: Any) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (200, 60, 40, 255)[:len(mode)] if mode != "P" else 1).save(out, format=image_format, **save)
    return out.getvalue()


def _noise_jpeg() -> bytes:
    out = io.BytesIO()
    Image.effect_noise((400, 400), 80).convert("RGB").save(out, format="JPEG", quality=95)
    return out.getvalue()


def _opened(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP"])
def test_jpeg_png_and_webp_become_a_webp_picture_and_thumbnail(image_format: str) -> None:
    prepared = picture_prepare(data=_image((1600, 1000), image_format))

    picture, thumbnail = _opened(prepared.picture), _opened(prepared.thumbnail)
    assert (picture.format, picture.size) == ("WEBP", (1200, 750))
    assert (thumbnail.format, thumbnail.size) == ("WEBP", (480, 300))


def test_a_small_picture_is_not_enlarged() -> None:
    prepared = picture_prepare(data=_image((300, 200), "PNG"))

    assert _opened(prepared.picture).size == (300, 200)
    assert _opened(prepared.thumbnail).size == (300, 200)


def test_transparency_is_kept() -> None:
    out = io.BytesIO()
    Image.new("RGBA", (200, 200), (200, 60, 40, 100)).save(out, format="PNG")
    prepared = picture_prepare(data=out.getvalue())

    assert _opened(prepared.thumbnail).mode == "RGBA"


def test_a_picture_taken_sideways_is_turned_upright_and_loses_its_exif() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to view
    exif[0x010F] = "Camera maker"
    data = _image((400, 200), "JPEG", exif=exif.tobytes())

    prepared = picture_prepare(data=data)

    picture = _opened(prepared.picture)
    assert picture.size == (200, 400)
    assert not picture.getexif()
    assert b"Camera maker" not in prepared.picture


def test_what_is_appended_to_a_valid_image_is_not_kept() -> None:
    data = _image((200, 200), "JPEG") + b"<script>alert(1)</script>"

    prepared = picture_prepare(data=data)

    assert b"<script>" not in prepared.picture
    assert b"<script>" not in prepared.thumbnail


def _refusal(data: bytes) -> PictureRejectedError:
    with pytest.raises(PictureRejectedError) as raised:
        picture_prepare(data=data)
    return raised.value


@pytest.mark.parametrize(("make", "code", "message"), [
    (lambda: b"", "picture_empty", "文件是空的：请选择一张 JPEG、PNG 或 WebP 图片"),
    (lambda: b"not an image at all", "picture_unreadable", "无法识别的图片：请上传 JPEG、PNG 或 WebP 格式的图片"),
    (lambda: b"<svg xmlns='http://www.w3.org/2000/svg'/>", "picture_unreadable",
     "无法识别的图片：请上传 JPEG、PNG 或 WebP 格式的图片"),
    (lambda: _image((200, 200), "GIF", mode="P"), "picture_format",
     "不支持 GIF 格式：请上传 JPEG、PNG 或 WebP 格式的图片"),
    (lambda: _image((200, 200), "BMP"), "picture_format",
     "不支持 BMP 格式：请上传 JPEG、PNG 或 WebP 格式的图片"),
    (lambda: _image((5001, 100), "PNG"), "picture_too_big",
     "图片尺寸 5001×100 超过上限 5000×5000 像素，请缩小后再上传"),
    (lambda: _image((40, 300), "PNG"), "picture_too_small", "图片尺寸 40×300 太小，宽和高至少 64 像素"),
    (lambda: _noise_jpeg()[:8000], "picture_corrupt", "图片已损坏或不完整，无法读取：请重新导出后再上传"),
    (lambda: _image((100, 100), "PNG") + b"\0" * MAX_PICTURE_BYTES, "picture_too_large",
     "图片超过 5 MB，请压缩或缩小后再上传"),
])
def test_what_cannot_be_a_picture_is_refused_with_a_reason(make: Callable[[], bytes], code: str,
                                                           message: str) -> None:
    refusal = _refusal(make())

    assert (refusal.code, refusal.message) == (code, message)


def test_an_animated_picture_is_refused() -> None:
    frames = [Image.new("RGB", (100, 100), color) for color in ("red", "blue")]
    out = io.BytesIO()
    frames[0].save(out, format="WEBP", save_all=True, append_images=frames[1:])

    assert _refusal(out.getvalue()).code == "picture_animated"


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a size in its header and has no pixel data: what a decompression bomb starts with."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("width", "height"), [(60_000, 60_000), (5_001, 4_000)])
def test_a_huge_picture_is_refused_before_it_is_decoded(width: int, height: int) -> None:
    assert _refusal(_png_header_only(width, height)).code == "picture_too_big"


def test_setting_a_picture_stores_both_files_and_replacing_it_deletes_the_old_ones(
        media_root: Path, django_capture_on_commit_callbacks: Any) -> None:
    product = ProductFactory.create()

    with django_capture_on_commit_callbacks(execute=True):
        first = product_picture_set(product_id=product.pk, data=_image())
    first_files = [first.picture.name, first.thumbnail.name]
    with django_capture_on_commit_callbacks(execute=True):
        second = product_picture_set(product_id=product.pk, data=_image((900, 900), "PNG"))

    product.refresh_from_db()
    picture, thumbnail = str(product.picture.name), str(product.thumbnail.name)
    assert [picture, thumbnail] == [second.picture.name, second.thumbnail.name]
    assert picture.startswith(f"products/{product.pk}/")
    assert picture.endswith(".webp")
    assert thumbnail.endswith("-thumb.webp")
    assert default_storage.exists(picture)
    assert default_storage.exists(thumbnail)
    assert not any(default_storage.exists(str(name)) for name in first_files)
    assert sorted(path.name for path in (media_root / "products" / str(product.pk)).iterdir()) == sorted(
        [Path(picture).name, Path(thumbnail).name])

    with django_capture_on_commit_callbacks(execute=True):
        product_picture_remove(product_id=product.pk)

    product.refresh_from_db()
    assert (product.picture.name, product.thumbnail.name) == ("", "")
    assert list((media_root / "products" / str(product.pk)).iterdir()) == []


def test_a_refused_picture_stores_nothing(media_root: Path) -> None:
    product = ProductFactory.create()

    with pytest.raises(PictureRejectedError):
        product_picture_set(product_id=product.pk, data=b"GIF89a nonsense")

    product.refresh_from_db()
    assert product.picture.name == ""
    assert not (media_root / "products").exists()


def _admin_form(product: Product, **extra: Any) -> dict[str, Any]:
    return {"category": product.category_id, "name": product.name, "description": "", "delivery_kind": "card_key",
            "status": "on_sale", "sort_order": "0", "min_quantity": "1", "max_quantity": "100",
            "low_stock_threshold": "10", "skus-TOTAL_FORMS": "0", "skus-INITIAL_FORMS": "0",
            "skus-MIN_NUM_FORMS": "0", "skus-MAX_NUM_FORMS": "1000", **extra}


def test_staff_upload_a_picture_on_the_product_page(admin_client: Client) -> None:
    product = ProductFactory.create()
    upload = SimpleUploadedFile("card.png", _image((1000, 800), "PNG"), content_type="image/png")

    response = admin_client.post(reverse("admin:catalog_product_change", args=[product.pk]),
                                 _admin_form(product, picture_upload=upload))

    assert response.status_code == 302
    product.refresh_from_db()
    assert _opened(default_storage.open(str(product.thumbnail.name)).read()).size == (480, 384)
    page = admin_client.get(reverse("admin:catalog_product_change", args=[product.pk])).content.decode()
    assert f'src="/media/{product.thumbnail.name}"' in page


@pytest.mark.parametrize(("upload", "message"), [
    (SimpleUploadedFile("notes.png", b"plain text, not a picture", content_type="image/png"),
     "无法识别的图片：请上传 JPEG、PNG 或 WebP 格式的图片"),
    (SimpleUploadedFile("anim.gif", _image((100, 100), "GIF", mode="P"), content_type="image/gif"),
     "不支持 GIF 格式：请上传 JPEG、PNG 或 WebP 格式的图片"),
    (SimpleUploadedFile("big.png", b"\x89PNG" + b"\0" * MAX_PICTURE_BYTES, content_type="image/png"),
     "图片超过 5 MB，请压缩或缩小后再上传"),
])
def test_the_admin_refuses_a_bad_picture_beside_the_field(admin_client: Client, media_root: Path,
                                                          upload: SimpleUploadedFile, message: str) -> None:
    product = ProductFactory.create(name="原名")

    response = admin_client.post(reverse("admin:catalog_product_change", args=[product.pk]),
                                 _admin_form(product, name="新名", picture_upload=upload))

    assert response.status_code == 200
    assert message in response.content.decode()
    product.refresh_from_db()
    assert (product.name, product.picture.name) == ("原名", "")
    assert not (media_root / "products").exists()


def test_staff_remove_a_picture(admin_client: Client, django_capture_on_commit_callbacks: Any) -> None:
    product = ProductFactory.create()
    product_picture_set(product_id=product.pk, data=_image())

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("admin:catalog_product_change", args=[product.pk]),
                                     _admin_form(product, picture_remove="on"))

    assert response.status_code == 302
    product.refresh_from_db()
    assert product.picture.name == ""


def test_the_storefront_shows_the_thumbnail_and_the_placeholder(client: Client) -> None:
    pictured = SkuFactory.create(product__name="有图商品").product
    plain = SkuFactory.create(product__name="无图商品").product
    stock_sku(pictured.skus.get(), 1)
    stored = product_picture_set(product_id=pictured.pk, data=_image())

    home = client.get(reverse("web:home")).content.decode()
    found = client.get(reverse("web:search"), {"q": "有图"}).content.decode()
    pictured_page = client.get(reverse("web:product", args=[pictured.pk])).content.decode()
    plain_page = client.get(reverse("web:product", args=[plain.pk])).content.decode()

    thumbnail = f'src="/media/{stored.thumbnail.name}"'
    assert home.count(thumbnail) == 1
    assert home.count("/static/web/product-placeholder.svg") == 1
    assert found.count(thumbnail) == 1
    assert f'src="/media/{stored.picture.name}"' in pictured_page
    assert "product-placeholder.svg" not in pictured_page
    assert "/static/web/product-placeholder.svg" in plain_page
    assert "/media/" not in plain_page

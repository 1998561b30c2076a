"""Product pictures: what staff may upload (a real JPEG, PNG or WebP image within size and dimension limits) and
the files made from it with Pillow (the picture itself and a thumbnail for the product cards).

Nothing uploaded is ever served as it came: every picture is decoded and encoded again as WebP, which drops
whatever else the file carried (EXIF with a location, a script appended to a valid image) and turns it upright.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from kameng.core.errors import ApplicationError

MAX_PICTURE_BYTES = 5 * 1024 * 1024
MAX_PICTURE_SIDE = 5000
MIN_PICTURE_SIDE = 64
ACCEPTED_FORMATS = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP"}
# The picture on the product page and the card thumbnail, each fitted inside a square of this side (never cropped,
# never enlarged).
PICTURE_SIDE = 1200
THUMBNAIL_SIDE = 480
WEBP_QUALITY = 85


class PictureRejectedError(ApplicationError):
    """An uploaded file that cannot be a product picture; the message says what to upload instead."""


@dataclass(frozen=True)
class PreparedPicture:
    picture: bytes  # WebP
    thumbnail: bytes  # WebP
    width: int
    height: int


def picture_prepare(*, data: bytes) -> PreparedPicture:
    """Check an upload and make the picture and its thumbnail from it. Raises `PictureRejectedError`."""
    if len(data) > MAX_PICTURE_BYTES:
        raise PictureRejectedError("图片超过 %(limit)s MB，请压缩或缩小后再上传", code="picture_too_large",
                                   params={"limit": MAX_PICTURE_BYTES // (1024 * 1024)})
    if not data:
        raise PictureRejectedError("文件是空的：请选择一张 JPEG、PNG 或 WebP 图片", code="picture_empty")
    image = _opened(data)
    width, height = image.size
    if width > MAX_PICTURE_SIDE or height > MAX_PICTURE_SIDE:
        raise PictureRejectedError("图片尺寸 %(width)s×%(height)s 超过上限 %(limit)s×%(limit)s 像素，请缩小后再上传",
                                   code="picture_too_big",
                                   params={"width": width, "height": height, "limit": MAX_PICTURE_SIDE})
    if width < MIN_PICTURE_SIDE or height < MIN_PICTURE_SIDE:
        raise PictureRejectedError("图片尺寸 %(width)s×%(height)s 太小，宽和高至少 %(limit)s 像素",
                                   code="picture_too_small",
                                   params={"width": width, "height": height, "limit": MIN_PICTURE_SIDE})
    try:
        image.load()
        upright = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError) as error:  # truncated or corrupt pixel data past a valid header
        raise PictureRejectedError("图片已损坏或不完整，无法读取：请重新导出后再上传",
                                   code="picture_corrupt") from error
    upright = upright.convert("RGBA" if _has_transparency(upright) else "RGB")
    return PreparedPicture(picture=_webp(upright, PICTURE_SIDE), thumbnail=_webp(upright, THUMBNAIL_SIDE),
                           width=upright.width, height=upright.height)


def _opened(data: bytes) -> Image.Image:
    """The image with only its header read, in an accepted format."""
    try:
        with warnings.catch_warnings():
            # Pillow warns, then refuses, past its pixel limit (a decompression bomb); ours is lower and says so.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise PictureRejectedError("图片尺寸超过上限 %(limit)s×%(limit)s 像素，请缩小后再上传", code="picture_too_big",
                                   params={"limit": MAX_PICTURE_SIDE}) from error
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise PictureRejectedError("无法识别的图片：请上传 JPEG、PNG 或 WebP 格式的图片",
                                   code="picture_unreadable") from error
    if image.format not in ACCEPTED_FORMATS:
        raise PictureRejectedError("不支持 %(format)s 格式：请上传 JPEG、PNG 或 WebP 格式的图片",
                                   code="picture_format", params={"format": image.format or "未知"})
    if getattr(image, "n_frames", 1) > 1:
        raise PictureRejectedError("不支持动图：请上传一张静态的 JPEG、PNG 或 WebP 图片", code="picture_animated")
    return image


def _has_transparency(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)


def _webp(image: Image.Image, side: int) -> bytes:
    fitted = image.copy()
    fitted.thumbnail((side, side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    fitted.save(out, format="WEBP", quality=WEBP_QUALITY, method=4)
    return out.getvalue()

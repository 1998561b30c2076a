"""QR codes drawn here, as inline SVG: the payload (a WeChat/Alipay code URL, or a simulator page in the demo) never
leaves the site, and the page needs no image service or external asset."""

from __future__ import annotations

from functools import lru_cache

import qrcode
import qrcode.image.svg
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

QR_CACHE_SIZE = 256  # the pay pages poll every 2 s; the same few payloads are drawn again and again


@lru_cache(maxsize=QR_CACHE_SIZE)
def qr_svg(payload: str, label: str = "") -> SafeString:
    """An <svg> (path only, no text, so nothing of the payload is echoed as markup) scaled by CSS."""
    image = qrcode.make(payload, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2,
                        error_correction=qrcode.constants.ERROR_CORRECT_M)
    svg: str = image.to_string(encoding="unicode")
    attributes = 'class="qr-code" role="img" data-testid="qr-code"'
    if label:
        attributes += f' aria-label="{escape(label)}"'
    return mark_safe(svg.replace("<svg ", f"<svg {attributes} ", 1))  # noqa: S308 - generated markup, label escaped

"""Writing and sending the buyer's e-mails: a plain-text body and an HTML alternative from one pair of templates,
in the buyer's language (Chinese unless they chose English), through Django's e-mail backend (EMAIL_BACKEND:
the console in the demo, SMTP in production)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

DEFAULT_LANGUAGE = "zh-hans"


def site_link(path: str) -> str:
    """An absolute address on this site for an e-mail (SITE_URL + path)."""
    return settings.SITE_URL.rstrip("/") + path


def order_link(number: str) -> str:
    return site_link(reverse("web:order_detail", args=[number]))


def known_language(language: str | None) -> str:
    codes = {code for code, _ in settings.LANGUAGES}
    return language if language in codes else DEFAULT_LANGUAGE


def email_build(*, to: str, template: str, context: dict[str, Any], language: str | None) -> EmailMultiAlternatives:
    """`notices/email/<template>_subject.txt`, `.txt` and `.html`, rendered in `language`."""
    with translation.override(known_language(language)):
        subject = " ".join(render_to_string(f"notices/email/{template}_subject.txt", context).split())
        text = render_to_string(f"notices/email/{template}.txt", context)
        html = render_to_string(f"notices/email/{template}.html", context)
    message = EmailMultiAlternatives(subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[to])
    message.attach_alternative(html, "text/html")
    return message

"""A form post declaring a charset Django cannot parse forms in (charset=gbk) answers 400 with a message, never 500."""

from __future__ import annotations

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

pytestmark = pytest.mark.django_db

GBK_FORM = "application/x-www-form-urlencoded; charset=gbk"
BROKEN_BODY = b"username=\xff\xfe%E4&password=\x81"


@pytest.mark.parametrize("debug", [True, False])
def test_gbk_form_post_answers_400_with_and_without_debug(settings: Settings, debug: bool) -> None:
    settings.DEBUG = debug

    response = Client(raise_request_exception=False).generic("POST", "/login/", BROKEN_BODY, content_type=GBK_FORM)

    assert response.status_code == 400
    assert "表单编码不受支持：请以 UTF-8 编码提交" in response.content.decode()


def test_gbk_form_post_to_the_api_answers_400_json() -> None:
    response = Client().generic("POST", "/api/v1/shop/orders", BROKEN_BODY, content_type=GBK_FORM)

    assert response.status_code == 400
    assert response.json() == {"code": "invalid_charset", "message": "表单编码不受支持：请以 UTF-8 编码提交"}


def test_utf8_form_posts_still_reach_the_view() -> None:
    response = Client().generic("POST", "/login/", b"username=nobody&password=wrong-password",
                                content_type="application/x-www-form-urlencoded; charset=UTF-8")

    assert "web/login.html" in [template.name for template in response.templates]  # the view judged the password
    assert "表单编码不受支持" not in response.content.decode()

"""Real-name verification as people and programs see it: the account page, the JSON API, the back office, and the
autofill other forms reuse."""

from __future__ import annotations

from datetime import datetime

import pytest
from django import forms
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from kameng.accounts.forms import RealNameAutofillMixin
from kameng.accounts.models import RealName, RealNameStatus, User
from kameng.accounts.selectors import is_verified
from kameng.accounts.services import realname_verify
from tests.accounts.ids import id_number
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NAME = "张小三"
NUMBER = id_number()
MASKED_NUMBER = NUMBER[:3] + "*" * 11 + NUMBER[-4:]
PAGE = "/account/realname/"
API = "/api/v1/account/realname"


@pytest.fixture
def buyer(client: Client) -> User:
    user = UserFactory.create()
    client.force_login(user)
    return user


def _post(client: Client, name: str = NAME, number: str = NUMBER) -> tuple[int, str]:
    response = client.post(PAGE, {"name": name, "id_number": number})
    return response.status_code, response.content.decode()


# --- the page -------------------------------------------------------------------------------------------------------

def test_the_page_needs_a_login(client: Client) -> None:
    response = client.get(PAGE)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("web:login"))
    assert reverse("web:realname") == PAGE


def test_the_nav_links_to_the_page(client: Client, buyer: User) -> None:
    body = client.get(reverse("web:home")).content.decode()

    assert f'href="{PAGE}" data-testid="nav-realname"' in body


def test_the_form_until_verified(client: Client, buyer: User) -> None:
    response = client.get(PAGE)
    body = response.content.decode()

    assert response.status_code == 200
    assert 'data-testid="realname-form"' in body
    assert 'data-status="unverified"' in body
    assert "今日还可尝试 5 次" in body
    assert "no-store" in response["Cache-Control"]


def test_verifying_shows_the_masked_identity_and_the_autofill(client: Client, buyer: User) -> None:
    response = client.post(PAGE, {"name": NAME, "id_number": NUMBER.lower()})

    assert response.status_code == 302
    assert response["Location"] == PAGE
    body = client.get(PAGE).content.decode()
    assert "实名认证成功" in body
    assert 'data-testid="realname-verified"' in body
    assert '<dd data-testid="realname-masked-name">张*三</dd>' in body
    assert f'<dd data-testid="realname-masked-id-number">{MASKED_NUMBER}</dd>' in body
    assert 'data-autofilled="real-name"' in body
    assert 'value="张*三"' in body
    assert 'data-testid="realname-form"' not in body
    assert NAME not in body
    assert NUMBER not in body


@pytest.mark.parametrize(("name", "number", "message"), [
    (NAME, NUMBER[:17] + ("0" if NUMBER[-1] != "0" else "1"), "身份证号码校验位不正确，请检查是否输错"),
    (NAME, id_number(born="19990230"), "身份证号码中的出生日期无效"),
    (NAME, id_number(region="990101"), "身份证号码中的地区代码无效"),
    (NAME, "110105900307123", "15 位的第一代身份证号码已停止使用，请输入 18 位第二代身份证号码"),
    (NAME, "11010519900307", "身份证号码应为 18 位：前 17 位是数字，最后一位是数字或 X"),
    ("Zhang San", NUMBER, "姓名应为 2–20 个汉字，少数民族姓名可用「·」分隔"),
    (NAME, id_number(sequence="998"), "未查询到该身份证号码的登记信息，请核对后重试"),
    ("", NUMBER, "请输入真实姓名"),
    (NAME, "", "请输入身份证号码"),
])
def test_each_bad_input_is_said_under_its_field(client: Client, buyer: User, name: str, number: str,
                                                message: str) -> None:
    code, body = _post(client, name, number)

    assert code == 400
    assert f'<small class="field-error">{message}</small>' in body
    assert is_verified(user_id=buyer.pk) is False


def test_a_mismatch_is_said_above_the_form(client: Client, buyer: User) -> None:
    code, body = _post(client, number=id_number(sequence="999"))

    assert code == 400
    assert 'data-code="realname_mismatch"' in body
    assert "姓名与身份证号码不一致，请核对后重试" in body
    assert 'data-testid="realname-rejected"' in body
    assert "今日还可尝试 4 次" in body


def test_a_number_used_by_another_account_is_a_conflict(client: Client, buyer: User) -> None:
    realname_verify(user_id=UserFactory.create().pk, name=NAME, id_number=NUMBER)

    code, body = _post(client)

    assert code == 409
    assert "该身份证号码已被其他账号实名认证" in body


def test_too_many_attempts_is_a_429_with_retry_after(client: Client, buyer: User) -> None:
    for _ in range(5):
        assert _post(client, number=id_number(sequence="999"))[0] == 400

    response = client.post(PAGE, {"name": NAME, "id_number": NUMBER})

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "今日实名认证尝试次数已用完，请明天再试" in response.content.decode()


def test_an_unavailable_provider_is_a_503_with_retry_after(client: Client, buyer: User) -> None:
    response = client.post(PAGE, {"name": NAME, "id_number": id_number(sequence="997")})

    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert "实名认证服务暂时不可用，请稍后重试" in response.content.decode()


def test_the_page_reads_english(client: Client, buyer: User) -> None:
    client.post(reverse("set_language"), {"language": "en", "next": "/"})

    body = client.get(PAGE).content.decode()
    _, refused = _post(client, number=NUMBER[:17] + ("0" if NUMBER[-1] != "0" else "1"))

    assert "Real-name verification" in body
    assert "5 attempts left today" in body
    assert "The ID number&#x27;s check digit is wrong: check it for a typo" in refused
    client.post(PAGE, {"name": NAME, "id_number": NUMBER})
    verified = client.get(PAGE).content.decode()
    assert "Real name verified" in verified
    assert "Autofill" in verified


# --- autofill -------------------------------------------------------------------------------------------------------

class DeliveryForm(RealNameAutofillMixin, forms.Form):
    real_name = forms.CharField(max_length=40)
    note = forms.CharField(required=False)


def test_a_form_needing_the_real_name_fills_it_in_once_verified() -> None:
    user = UserFactory.create()
    realname_verify(user_id=user.pk, name=NAME, id_number=NUMBER)

    shown = DeliveryForm()
    assert shown.autofill_real_name(user_id=user.pk) is True
    assert 'value="张*三"' in str(shown["real_name"])
    assert "disabled" in str(shown["real_name"])

    posted = DeliveryForm({"real_name": "李四", "note": "x"})
    posted.autofill_real_name(user_id=user.pk)
    assert posted.is_valid()
    assert posted.cleaned_data == {"real_name": NAME, "note": "x"}


def test_before_verification_the_field_is_an_ordinary_one() -> None:
    form = DeliveryForm({"real_name": "李四"})

    assert form.autofill_real_name(user_id=UserFactory.create().pk) is False
    assert form.autofill_real_name(user_id=None) is False
    assert form.is_valid()
    assert form.cleaned_data["real_name"] == "李四"


# --- the JSON API ---------------------------------------------------------------------------------------------------

def test_the_api_needs_a_session(client: Client) -> None:
    assert client.get(API).status_code == 401
    assert client.post(API, {"name": NAME, "id_number": NUMBER}, content_type="application/json").status_code == 401


def test_the_api_status_before_and_after(client: Client, buyer: User) -> None:
    before = client.get(API)
    assert before.status_code == 200
    assert before.json() == {"status": "unverified", "status_display": "未认证", "is_verified": False,
                             "masked_name": None, "masked_id_number": None, "verified_at": None,
                             "rejection_code": "", "attempts_left_today": 5}
    assert "no-store" in before["Cache-Control"]

    verified = client.post(API, {"name": NAME, "id_number": NUMBER}, content_type="application/json")

    assert verified.status_code == 200
    body = verified.json()
    assert (body["status"], body["is_verified"], body["masked_name"], body["masked_id_number"]) == (
        "verified", True, "张*三", MASKED_NUMBER)
    assert datetime.fromisoformat(body["verified_at"]) <= timezone.now()
    assert NUMBER not in verified.content.decode()
    assert client.get(API).json()["masked_name"] == "张*三"


@pytest.mark.parametrize(("payload", "status", "code"), [
    ({"name": NAME, "id_number": NUMBER[:17] + ("0" if NUMBER[-1] != "0" else "1")}, 400, "id_number_checksum"),
    ({"name": NAME, "id_number": id_number(region="990101")}, 400, "id_number_region"),
    ({"name": NAME, "id_number": "110105900307123"}, 400, "id_number_legacy"),
    ({"name": "Zhang", "id_number": NUMBER}, 400, "name_format"),
    ({"name": NAME, "id_number": id_number(sequence="999")}, 400, "realname_mismatch"),
    ({"name": NAME, "id_number": id_number(sequence="997")}, 503, "identity_provider_unavailable"),
    ({"name": NAME}, 422, "invalid_input"),
])
def test_api_refusals(client: Client, buyer: User, payload: dict[str, str], status: int, code: str) -> None:
    response = client.post(API, payload, content_type="application/json")

    assert response.status_code == status
    assert response.json()["code"] == code
    assert is_verified(user_id=buyer.pk) is False


def test_api_conflicts_and_throttling(client: Client, buyer: User) -> None:
    realname_verify(user_id=UserFactory.create().pk, name=NAME, id_number=NUMBER)
    taken = client.post(API, {"name": NAME, "id_number": NUMBER}, content_type="application/json")
    assert (taken.status_code, taken.json()["code"]) == (409, "realname_id_number_taken")
    for _ in range(4):
        client.post(API, {"name": NAME, "id_number": id_number(sequence="999")}, content_type="application/json")

    throttled = client.post(API, {"name": NAME, "id_number": id_number(sequence="124")},
                            content_type="application/json")

    assert (throttled.status_code, throttled.json()["code"]) == (429, "realname_too_many_attempts")
    assert int(throttled["Retry-After"]) > 0
    assert client.get(API).json()["attempts_left_today"] == 0


def test_api_unavailable_says_when_to_retry(client: Client, buyer: User) -> None:
    response = client.post(API, {"name": NAME, "id_number": id_number(sequence="997")},
                           content_type="application/json")

    assert response["Retry-After"] == "30"
    assert response.json()["extra"] == {"retryable": True, "retry_after": 30}


def test_api_verifying_twice_is_a_conflict(client: Client, buyer: User) -> None:
    client.post(API, {"name": NAME, "id_number": NUMBER}, content_type="application/json")

    again = client.post(API, {"name": NAME, "id_number": NUMBER}, content_type="application/json")

    assert (again.status_code, again.json()["code"]) == (409, "realname_already_verified")


# --- the back office --------------------------------------------------------------------------------------------------

def test_the_admin_shows_only_masked_values(admin_client: Client) -> None:
    user = UserFactory.create()
    realname_verify(user_id=user.pk, name=NAME, id_number=NUMBER)
    row = RealName.objects.get(user=user)

    listing = admin_client.get(reverse("admin:accounts_realname_changelist")).content.decode()
    detail = admin_client.get(reverse("admin:accounts_realname_change", args=[row.pk])).content.decode()

    for page in (listing, detail):
        assert "张*三" in page
        assert MASKED_NUMBER in page
        assert NAME not in page
        assert NUMBER not in page
    assert 'name="name"' not in detail  # no editable field for the name or the number
    assert 'name="id_number"' not in detail


def test_the_admin_finds_an_account_by_its_full_id_number(admin_client: Client) -> None:
    verified, other = UserFactory.create(), UserFactory.create()
    realname_verify(user_id=verified.pk, name=NAME, id_number=NUMBER)
    realname_verify(user_id=other.pk, name="李四", id_number=id_number(sequence="124"))

    page = admin_client.get(reverse("admin:accounts_realname_changelist"), {"q": NUMBER.lower()}).content.decode()

    assert verified.username in page
    assert other.username not in page


def test_staff_reset_from_the_admin(admin_client: Client) -> None:
    user = UserFactory.create()
    realname_verify(user_id=user.pk, name=NAME, id_number=NUMBER)
    row = RealName.objects.get(user=user)

    response = admin_client.post(reverse("admin:accounts_realname_changelist"),
                                 {"action": "reset", "_selected_action": [row.pk]})

    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.status, row.name, row.id_number) == (RealNameStatus.UNVERIFIED, None, None)


def test_staff_who_may_only_view_cannot_reset(client: Client) -> None:
    staff = UserFactory.create(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_realname"))
    client.force_login(staff)
    user = UserFactory.create()
    realname_verify(user_id=user.pk, name=NAME, id_number=NUMBER)
    row = RealName.objects.get(user=user)

    listing = client.get(reverse("admin:accounts_realname_changelist"))
    client.post(reverse("admin:accounts_realname_changelist"), {"action": "reset", "_selected_action": [row.pk]})

    assert listing.status_code == 200
    assert "张*三" in listing.content.decode()
    row.refresh_from_db()
    assert row.status == RealNameStatus.VERIFIED

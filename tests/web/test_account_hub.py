"""The buyer's account hub (/account/): what it shows, and setting the notification e-mail through a confirmation
link — validated, lower-case, bounded per account and per address, never changed by a link alone (a GET)."""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from kameng.accounts.models import User
from kameng.notices.models import NoticeLanguage
from kameng.web.views import account as account_views
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _logged_in(client: Client, **fields: object) -> User:
    user = UserFactory.create(**fields)
    client.force_login(user)
    return user


def _confirm_link(message: mail.EmailMessage) -> str:
    found = re.search(r"https?://\S+/account/email/confirm/[^/\s]+/", str(message.body))
    assert found is not None, message.body
    return urlsplit(found.group(0)).path


def test_the_account_page_needs_a_login(client: Client) -> None:
    response = client.get(reverse("web:account"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("web:login"))


def test_the_account_page_shows_the_account_and_links_the_sections_that_exist(client: Client) -> None:
    _logged_in(client, username="alice_hub", phone="13800138000")

    body = client.get(reverse("web:account")).content.decode()

    assert 'data-testid="account-username">alice_hub<' in body
    assert "138****8000" in body
    assert "13800138000" not in body
    assert 'data-testid="account-email"><span class="muted">未设置</span>' in body
    sections = re.findall(r'<a href="([^"]+)" data-testid="account-section">([^<]+)</a>', body)
    assert (reverse("web:order_list"), "我的订单") in sections
    assert (reverse("web:wallet"), "钱包") in sections
    assert (reverse("web:realname"), "实名认证") in sections  # sections other apps added
    assert (reverse("web:security"), "支付设置") in sections
    assert f'href="{reverse("web:account")}" data-testid="nav-account"' in body


def test_every_merged_account_section_is_listed_in_order(client: Client) -> None:
    _logged_in(client)

    body = client.get(reverse("web:account")).content.decode()

    sections = re.findall(r'<a href="([^"]+)" data-testid="account-section">([^<]+)</a>', body)
    assert sections == [(reverse("web:order_list"), "我的订单"), (reverse("web:wallet"), "钱包"),
                        (reverse("web:realname"), "实名认证"), (reverse("web:membership"), "会员等级"),
                        (reverse("web:points"), "积分"), (reverse("web:security"), "支付设置"),
                        (reverse("web:supplier_apply"), "申请成为供货商"),  # the ways to selling here
                        (reverse("web:reseller_apply"), "申请成为代理")]
    assert f'href="{reverse("web:security")}" data-testid="nav-security">支付设置</a>' in body  # in the header


def test_a_section_whose_page_is_not_installed_is_left_out(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    _logged_in(client)
    monkeypatch.setattr(account_views, "ACCOUNT_SECTIONS", (
        (("web:no_such_page", "web:wallet"), "钱包"), (("web:not_here_either",), "积分")))

    response = client.get(reverse("web:account"))

    assert response.status_code == 200
    sections = re.findall(r'<a href="([^"]+)" data-testid="account-section">', response.content.decode())
    assert sections == [reverse("web:wallet"), reverse("web:supplier_apply"), reverse("web:reseller_apply")]


def test_setting_an_email_sends_a_link_and_changes_nothing_until_it_is_confirmed(client: Client) -> None:
    user = _logged_in(client)

    response = client.post(reverse("web:account_email"), {"email": "  Alice@Example.COM "})

    assert response.status_code == 302
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@example.com"]
    assert message.subject == "请确认您的通知邮箱"
    user.refresh_from_db()
    assert user.email == ""
    link = _confirm_link(message)

    asked = client.get(link)  # a mail scanner opening the link changes nothing
    assert asked.status_code == 200
    assert "alice@example.com" in asked.content.decode()
    user.refresh_from_db()
    assert user.email == ""

    confirmed = client.post(link)
    assert confirmed.status_code == 302
    user.refresh_from_db()
    assert user.email == "alice@example.com"
    assert NoticeLanguage.objects.get(user=user).language == "zh-hans"
    assert 'data-testid="account-email">alice@example.com<' in client.get(reverse("web:account")).content.decode()
    assert client.post(link).status_code == 302  # opened twice: already done, no error
    assert len(mail.outbox) == 1


@pytest.mark.parametrize("address", ["not-an-email", "a@b", "two@@example.com", "x" * 250 + "@example.com", "",
                                     "alice@example.com\nBcc: victim@example.com"])
def test_a_bad_address_is_a_clear_error_and_sends_nothing(client: Client, address: str) -> None:
    user = _logged_in(client)

    response = client.post(reverse("web:account_email"), {"email": address})

    assert response.status_code == 400
    assert "请输入有效的邮箱地址" in response.content.decode()
    assert mail.outbox == []
    user.refresh_from_db()
    assert user.email == ""


def test_the_current_address_again_is_refused(client: Client) -> None:
    _logged_in(client, email="alice@example.com")

    response = client.post(reverse("web:account_email"), {"email": "ALICE@example.com"})

    assert response.status_code == 409
    assert "这已经是您的通知邮箱" in response.content.decode()
    assert mail.outbox == []


def test_confirmation_emails_are_bounded_per_account(client: Client) -> None:
    _logged_in(client)

    statuses = [client.post(reverse("web:account_email"), {"email": f"a{index}@example.com"}).status_code
                for index in range(4)]

    assert statuses == [302, 302, 302, 429]
    assert len(mail.outbox) == 3


def test_confirmation_emails_are_bounded_per_address_across_accounts(client: Client) -> None:
    statuses = []
    for _ in range(4):
        _logged_in(client)
        statuses.append(client.post(reverse("web:account_email"), {"email": "Victim@example.com"}).status_code)

    assert statuses == [302, 302, 302, 429]
    assert [message.to for message in mail.outbox] == [["victim@example.com"]] * 3


def test_a_link_of_another_account_a_tampered_or_an_expired_link_does_nothing(
        client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    _logged_in(client)
    client.post(reverse("web:account_email"), {"email": "alice@example.com"})
    link = _confirm_link(mail.outbox[0])
    other = _logged_in(client)

    assert client.post(link).status_code == 400
    assert client.post(link.replace("/confirm/", "/confirm/x")).status_code == 400
    other.refresh_from_db()
    assert other.email == ""

    client.post(reverse("web:account_email"), {"email": "bob@example.com"})
    own_link = _confirm_link(mail.outbox[1])
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 25 * 3600)
    expired = client.post(own_link)

    assert expired.status_code == 400
    assert "确认链接无效或已过期" in expired.content.decode()
    other.refresh_from_db()
    assert other.email == ""


def test_a_link_overtaken_by_a_later_change_does_nothing(client: Client) -> None:
    user = _logged_in(client)
    client.post(reverse("web:account_email"), {"email": "first@example.com"})
    client.post(reverse("web:account_email"), {"email": "second@example.com"})
    first, second = (_confirm_link(message) for message in mail.outbox)

    assert client.post(second).status_code == 302
    assert client.post(first).status_code == 400
    user.refresh_from_db()
    assert user.email == "second@example.com"


def test_removing_the_address(client: Client) -> None:
    user = _logged_in(client, email="alice@example.com")

    response = client.post(reverse("web:account_email_remove"))

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.email == ""


def test_an_english_reader_gets_the_confirmation_and_later_e_mails_in_english(client: Client) -> None:
    user = _logged_in(client)
    client.post(reverse("set_language"), {"language": "en", "next": "/"})

    page = client.get(reverse("web:account")).content.decode()
    refused = client.post(reverse("web:account_email"), {"email": "nope"}).content.decode()
    client.post(reverse("web:account_email"), {"email": "alice@example.com"})
    client.post(_confirm_link(mail.outbox[0]))

    assert "My account" in page
    assert "Notification e-mail" in page
    assert "Please enter a valid e-mail address" in refused
    assert mail.outbox[0].subject == "Please confirm your notification e-mail address"
    assert NoticeLanguage.objects.get(user=user).language == "en"

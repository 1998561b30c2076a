"""Logging in by phone in a real browser: the 短信登录 tab with its resend countdown, and 一键登录 through the
simulated carrier, whose token login.js sends on by itself — all under the Content-Security-Policy."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from kameng.accounts.models import User
from tests.accounts.phone_support import recording_sender_install

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_sms_login_registers_a_new_number(page: Page, live_server: LiveServer,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    sender = recording_sender_install(monkeypatch)  # the live server runs in this process
    page.goto(f"{live_server.url}/login/")

    page.get_by_test_id("tab-sms").click()  # switched in place by login.js
    expect(page.get_by_test_id("sms-phone")).to_be_visible()
    expect(page.get_by_test_id("login-username")).to_be_hidden()
    page.get_by_test_id("sms-phone").fill("13812345678")
    page.get_by_test_id("sms-send").click()

    expect(page.get_by_test_id("sms-sent")).to_contain_text("验证码已发送")
    expect(page.get_by_test_id("sms-send")).to_be_disabled()
    expect(page.get_by_test_id("sms-send")).to_have_text(re.compile(r"\d+ 秒后重发"))
    assert len(sender.sent) == 1
    page.get_by_test_id("sms-code").fill(sender.last_code)
    page.get_by_test_id("sms-submit").click()

    expect(page.locator(".msg-success")).to_contain_text("注册成功")
    user = User.objects.get()
    assert user.phone == "13812345678"


def test_enter_in_the_code_field_logs_in_during_the_resend_countdown(page: Page, live_server: LiveServer,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    sender = recording_sender_install(monkeypatch)
    page.goto(f"{live_server.url}/login/?tab=sms")
    page.get_by_test_id("sms-phone").fill("13812345670")
    page.get_by_test_id("sms-send").click()
    expect(page.get_by_test_id("sms-send")).to_be_disabled()  # the 60 s countdown

    send_box = page.get_by_test_id("sms-send").bounding_box()
    submit_box = page.get_by_test_id("sms-submit").bounding_box()
    assert send_box is not None
    assert submit_box is not None
    assert send_box["y"] < submit_box["y"]  # 获取验证码 still shows above 登录 / 注册
    page.get_by_test_id("sms-code").fill(sender.last_code)
    page.get_by_test_id("sms-code").press("Enter")

    expect(page.locator(".msg-success")).to_contain_text("注册成功")
    assert len(sender.sent) == 1  # Enter sent no second code
    assert User.objects.get().phone == "13812345670"


def test_one_tap_login_through_the_simulated_carrier(page: Page, live_server: LiveServer) -> None:
    page.goto(f"{live_server.url}/login/?tab=onetap")

    page.get_by_test_id("onetap-start").click()
    expect(page.get_by_test_id("onetap-masked-phone")).to_have_text("本机号码 138****0000")
    page.get_by_test_id("onetap-phone").fill("13912345678")
    page.get_by_test_id("onetap-login").click()

    # Back on the login page, login.js posts the token at once: the buyer lands logged in.
    expect(page.locator(".msg-success")).to_contain_text("注册成功")
    assert User.objects.get().phone == "13912345678"

"""Staff two-factor authentication (django-otp): every staff account confirms a TOTP authenticator before it can use
the back office, and gets 10 single-use recovery codes.

- Enrolment: an unconfirmed TOTP device (StaffTOTPDevice: its key encrypted at rest, kameng/accounts/staff_models.py)
  is made for the account and shown once as a QR code (drawn here, as SVG) and
  as its base32 secret; a correct code confirms it and makes the recovery codes (django-otp's static device).
- Recovery codes are stored as a keyed hash (the blind-index key, kameng.core.crypto), never as themselves: a copy
  of the database does not let anyone in. Each works once.
- Wrong codes are throttled by django-otp per device (a doubling wait after each failure, OTP_*_THROTTLE_FACTOR).
- The session remembers which device verified it (django-otp's key, so `django_otp.login` semantics hold) and when a
  code was last entered, for the step-up of sensitive actions (kameng/accounts/staff_reauth.py).

Events (enrolled, verified, recovery code used, failures) go to the audit log.
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass
from typing import Any

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils.safestring import SafeString, mark_safe
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp import login as otp_login
from django_otp.models import Device
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

from kameng.accounts.staff_models import StaffTOTPDevice
from kameng.audit.services import audit_record
from kameng.core.crypto import blind_index

RECOVERY_CODE_COUNT = 10
RECOVERY_CODE_LENGTH = 10  # base32 characters: 50 bits each
RECOVERY_CODE_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
RECOVERY_CODE_CONTEXT = "accounts.staff_recovery_code"
DEVICE_NAME = "身份验证器"
RECOVERY_DEVICE_NAME = "恢复码"
# When a code was last entered in this session (epoch seconds): the step-up of sensitive actions reads it.
REAUTH_SESSION_KEY = "staff_reauth_at"


@dataclass(frozen=True)
class CodeCheck:
    device: Device | None
    error: str = ""


def totp_device_confirmed(user: Any) -> StaffTOTPDevice | None:
    return StaffTOTPDevice.objects.filter(user=user, confirmed=True).order_by("id").first()


def staff_has_device(user: Any) -> bool:
    return StaffTOTPDevice.objects.filter(user=user, confirmed=True).exists()


def totp_device_pending(*, user: Any) -> StaffTOTPDevice:
    """The account's unconfirmed authenticator, made on first need (one at a time; re-enrolling keeps it)."""
    device = StaffTOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()
    if device is None:
        device = StaffTOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)
    return device


def totp_secret_base32(device: StaffTOTPDevice) -> str:
    """The secret as authenticator apps take it by hand (base32, no padding)."""
    return base64.b32encode(device.bin_key).decode().rstrip("=")


def totp_code_now(key_hex: str) -> str:
    """The current 6-digit code for a hex TOTP key (django-otp's defaults: 30 s steps, SHA-1)."""
    return f"{totp(bytes.fromhex(key_hex)):06d}"


def totp_qr_svg(device: StaffTOTPDevice) -> SafeString:
    """The enrolment QR code (otpauth:// URI) as inline SVG, drawn here: the secret never leaves the site."""
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    svg: str = image.to_string(encoding="unicode")
    return mark_safe(svg.replace("<svg ", '<svg role="img" aria-label="TOTP QR" data-testid="totp-qr" ', 1))  # noqa: S308


def recovery_code_digest(code: str) -> str:
    """What the database keeps of a recovery code: 16 hex characters of its keyed hash (StaticToken.token holds 16)."""
    normalised = code.replace("-", "").replace(" ", "").strip().lower()
    return blind_index(normalised, context=RECOVERY_CODE_CONTEXT).hex()[:16]


def recovery_code_shaped(code: str) -> bool:
    normalised = code.replace("-", "").replace(" ", "").strip().lower()
    return len(normalised) == RECOVERY_CODE_LENGTH and all(char in RECOVERY_CODE_ALPHABET for char in normalised)


def recovery_codes_replace(*, user: Any) -> list[str]:
    """New recovery codes for `user` (the old ones stop working), returned once to be shown once."""
    codes = ["".join(secrets.choice(RECOVERY_CODE_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
             for _ in range(RECOVERY_CODE_COUNT)]
    with transaction.atomic():
        device, _ = StaticDevice.objects.get_or_create(user=user, name=RECOVERY_DEVICE_NAME,
                                                       defaults={"confirmed": True})
        device.token_set.all().delete()
        StaticToken.objects.bulk_create(
            [StaticToken(device=device, token=recovery_code_digest(code)) for code in codes])
    return [f"{code[:5]}-{code[5:]}" for code in codes]


def _throttle_error(device: Device) -> str:
    allowed, data = device.verify_is_allowed()
    if allowed:
        return ""
    wait = ""
    locked_until = (data or {}).get("locked_until")
    if locked_until is not None:
        from django.utils import timezone

        wait = f"，请 {max(1, int((locked_until - timezone.now()).total_seconds()) + 1)} 秒后再试"
    return f"错误次数过多{wait}"


def staff_code_check(*, request: HttpRequest, user: Any, code: str) -> CodeCheck:
    """A 6-digit code against the account's confirmed authenticator, anything else against its recovery codes
    (which are then spent). Throttled per device by django-otp; each outcome is audited."""
    code = code.strip().replace(" ", "")
    if not code:
        return CodeCheck(None, "请输入验证码")
    is_totp = code.isdigit() and len(code) == 6
    if not (is_totp or recovery_code_shaped(code)):
        # A mistyped code (5 digits, a stray letter) matches nothing: said plainly, and no device's wait grows.
        return CodeCheck(None, "验证码是身份验证器上的 6 位数字；恢复码是 10 位字母数字（如 abcde-23456）")
    with transaction.atomic():
        device: Device | None
        if is_totp:
            device = (StaffTOTPDevice.objects.select_for_update().filter(user=user, confirmed=True)
                      .order_by("id").first())
        else:
            device = StaticDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
        if device is None:
            return CodeCheck(None, "验证码错误" if is_totp else "恢复码错误")
        throttled = _throttle_error(device)
        if throttled:
            audit_record(action="staff_otp.throttled", request=request, actor=user, instance=device)
            return CodeCheck(None, throttled)
        if device.verify_token(code if is_totp else recovery_code_digest(code)):
            if not is_totp:
                left = device.token_set.count()
                audit_record(action="staff_otp.recovery_code_used", request=request, actor=user, instance=device,
                             after={"recovery_codes_left": left})
            return CodeCheck(device)
    audit_record(action="staff_otp.failed", request=request, actor=user, object_type="accounts.user",
                 object_id=user.pk, object_repr=str(user))
    return CodeCheck(None, "验证码错误，请输入身份验证器上当前的 6 位数字" if is_totp else "恢复码错误或已使用")


def staff_session_verified(*, request: HttpRequest, device: Device) -> None:
    """The session passed 2FA with `device` (django-otp's session key) and a code was entered just now."""
    otp_login(request, device)
    staff_reauth_mark(request)


def staff_reauth_mark(request: HttpRequest) -> None:
    request.session[REAUTH_SESSION_KEY] = int(time.time())


def staff_reauth_is_fresh(request: HttpRequest) -> bool:
    entered = request.session.get(REAUTH_SESSION_KEY)
    return isinstance(entered, int) and time.time() - entered <= settings.KAMENG_STAFF_REAUTH_SECONDS


def staff_verified_device(request: HttpRequest) -> Device | None:
    """The confirmed device of this user that verified this session, or None (django-otp's OTPMiddleware check,
    done here only for the admin's paths so that storefront requests pay nothing for it)."""
    persistent_id = request.session.get(DEVICE_ID_SESSION_KEY)
    if not persistent_id:
        return None
    device = Device.from_persistent_id(str(persistent_id))
    user = request.user
    if device is None or device.user_id != user.pk or not device.confirmed:
        request.session.pop(DEVICE_ID_SESSION_KEY, None)
        return None
    return device


def totp_device_confirm(*, request: HttpRequest, device: StaffTOTPDevice, code: str) -> tuple[list[str], str]:
    """Confirm the pending authenticator with a code from it: (the new recovery codes, "") or ([], the error)."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return [], "请输入身份验证器上的 6 位数字"
    with transaction.atomic():
        locked = StaffTOTPDevice.objects.select_for_update().get(pk=device.pk)
        throttled = _throttle_error(locked)
        if throttled:
            return [], throttled
        if not locked.verify_token(code):
            return [], "验证码错误：请确认手机时间准确，并输入身份验证器上当前的 6 位数字"
        locked.confirmed = True
        locked.save(update_fields=["confirmed"])
        # One authenticator per account: an older confirmed one (a lost phone, re-enrolled) stops working.
        StaffTOTPDevice.objects.filter(user=locked.user).exclude(pk=locked.pk).delete()
        codes = recovery_codes_replace(user=locked.user)
        audit_record(action="staff_otp.enrolled", request=request, actor=locked.user, instance=locked,
                     after={"recovery_codes": RECOVERY_CODE_COUNT})
    staff_session_verified(request=request, device=locked)
    return codes, ""


def totp_device_seed(*, user: Any, key_hex: str) -> StaffTOTPDevice:
    """A confirmed authenticator with a known key (the demo's admin, tests): never for real accounts."""
    device, _ = StaffTOTPDevice.objects.update_or_create(user=user, name=DEVICE_NAME,
                                                    defaults={"key": key_hex, "confirmed": True})
    return device

"""Supplier onboarding (供货商入驻): applying, company data, the legal person's real name, the versioned agreement,
what is still missing, submitting for review, and staff review.

Status machine (Supplier.status), one `_transition` that refuses any other move and writes a SupplierReview row:

    draft ──submit──▶ pending_review ──approve──▶ approved
    needs_more ─submit─┘      │ ├──reject (reason)──▶ rejected
                              │ └──ask for more (reason)──▶ needs_more

Submitting needs every item of `onboarding_missing` done; approving needs a passing sample test (样品测试) while
KAMENG_SUPPLIER_SAMPLE_TEST_REQUIRED is on. The legal person's real name is the owner account's real-name
verification (kameng.accounts realname_verify: same checks, attempt limits and provider), linked to the profile
when its name is the legal person's. Qualification documents are in documents.py, sample tests in sampling.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from kameng.accounts.identity import mask_name, parse_id_number, parse_name
from kameng.accounts.models import RealName, RealNameStatus
from kameng.accounts.services import realname_verify
from kameng.core.errors import ApplicationError, ConflictError, NotFoundError
from kameng.suppliers.models import (
    AgreementAcceptance,
    DocumentKind,
    SampleResult,
    SampleTest,
    Supplier,
    SupplierAgreement,
    SupplierProfile,
    SupplierReview,
    SupplierStatus,
)

# --- 统一社会信用代码 (GB 32100-2015) -------------------------------------------------------------------------------
# 18 characters: registration authority (1), entity type (1), region code (6 digits), organisation code (9), check
# character (1). The alphabet is the digits and the capitals without I, O, Z, S, V; the check character is
# 31 − (Σ value × 3^i mod 31) mod 31, its value 0 written "0".
CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_CODE_WEIGHTS = tuple(pow(3, position, 31) for position in range(17))
_CREDIT_CODE_RE = re.compile(f"[{CREDIT_CODE_ALPHABET}]{{18}}")
CREDIT_CODE_FORMAT_MESSAGE = "统一社会信用代码应为 18 位数字或大写字母（不含 I、O、Z、S、V）"
CREDIT_CODE_CHECK_MESSAGE = "统一社会信用代码校验位不正确，请核对营业执照"
PHONE_RE = re.compile(r"^1[3-9]\d{9}$")


def credit_code_check_character(first_17: str) -> str:
    total = sum(CREDIT_CODE_ALPHABET.index(char) * weight
                for char, weight in zip(first_17, _CREDIT_CODE_WEIGHTS, strict=True))
    return CREDIT_CODE_ALPHABET[(31 - total % 31) % 31]


def parse_credit_code(text: str) -> str:
    """The code upper-cased without blanks, or ApplicationError (format, then check character)."""
    code = "".join(text.split()).upper()
    if not _CREDIT_CODE_RE.fullmatch(code):
        raise ApplicationError(CREDIT_CODE_FORMAT_MESSAGE, code="credit_code_format")
    if credit_code_check_character(code[:17]) != code[17]:
        raise ApplicationError(CREDIT_CODE_CHECK_MESSAGE, code="credit_code_checksum")
    return code


# --- applying and company data ----------------------------------------------------------------------------------

EDITABLE_STATUSES = frozenset({SupplierStatus.DRAFT, SupplierStatus.NEEDS_MORE})
NOT_EDITABLE_MESSAGE = "当前状态（%(status)s）不能修改入驻资料"


def supplier_apply(*, user_id: int, name: str) -> Supplier:
    """The logged-in user becomes a supplier in DRAFT (one supplier per account)."""
    name = " ".join(name.split())
    if not name:
        raise ApplicationError("请填写供货商名称", code="supplier_name_required")
    if len(name) > 100:
        raise ApplicationError("供货商名称最多 100 个字", code="supplier_name_too_long")
    try:
        with transaction.atomic():
            return Supplier.objects.create(owner_id=user_id, name=name, status=SupplierStatus.DRAFT)
    except IntegrityError:
        raise ConflictError("该账号已是供货商", code="supplier_exists") from None


def _require_editable(supplier: Supplier) -> None:
    supplier.refresh_from_db(fields=["status"])  # staff may have reviewed it since it was read
    if supplier.status not in EDITABLE_STATUSES:
        raise ConflictError(NOT_EDITABLE_MESSAGE, code="supplier_not_editable",
                            params={"status": supplier.get_status_display()})


@sensitive_variables("legal_person_name", "contact_name", "contact_phone")
def supplier_profile_save(*, supplier: Supplier, company_name: str, credit_code: str, legal_person_name: str,
                          contact_name: str, contact_phone: str, business_scope: str = "") -> SupplierProfile:
    """Create or update the company data. Changing the legal person's name drops its real-name link."""
    _require_editable(supplier)
    company_name = " ".join(company_name.split())
    if not company_name:
        raise ApplicationError("请填写企业名称", code="company_name_required")
    code = parse_credit_code(credit_code)
    person = parse_name(legal_person_name)
    contact = " ".join(contact_name.split())
    if not contact:
        raise ApplicationError("请填写联系人", code="contact_name_required")
    phone = "".join(contact_phone.split())
    if not PHONE_RE.fullmatch(phone):
        raise ApplicationError("联系电话应为 11 位手机号码", code="contact_phone_format")
    profile = SupplierProfile.objects.filter(supplier=supplier).first() or SupplierProfile(supplier=supplier)
    if profile.pk is not None and profile.legal_person_name != person:
        profile.legal_person_real_name, profile.legal_person_verified_at = None, None
    profile.company_name, profile.credit_code, profile.legal_person_name = company_name[:100], code, person
    profile.contact_name, profile.contact_phone = contact[:50], phone
    profile.business_scope = business_scope.strip()
    profile.save()
    return profile


def legal_person_is_verified(profile: SupplierProfile | None) -> bool:
    """The linked real name is still verified and still the legal person's (staff may reset it)."""
    if profile is None or profile.legal_person_real_name_id is None:
        return False
    real_name = RealName.objects.filter(pk=profile.legal_person_real_name_id).first()
    return (real_name is not None and real_name.status == RealNameStatus.VERIFIED
            and real_name.name == profile.legal_person_name)


@sensitive_variables("id_number", "number")
def supplier_legal_person_verify(*, supplier: Supplier, id_number: str) -> SupplierProfile:
    """Real-name of the legal person (法人实名): the profile's legal person name with `id_number`.

    The owner account carries it: an account not yet verified is verified now as the legal person (the provider
    is asked, outside any transaction); one verified already must be the legal person (same name and number).
    """
    profile = SupplierProfile.objects.filter(supplier=supplier).first()
    if profile is None:
        raise ApplicationError("请先填写企业资料（含法定代表人姓名）", code="profile_missing")
    if legal_person_is_verified(profile):
        raise ConflictError("法定代表人已完成实名认证", code="legal_person_already_verified")
    number = parse_id_number(id_number, today=timezone.localdate()).number
    real_name = RealName.objects.filter(user_id=supplier.owner_id, status=RealNameStatus.VERIFIED).first()
    if real_name is None:
        real_name = realname_verify(user_id=supplier.owner_id, name=str(profile.legal_person_name), id_number=number)
    elif real_name.name != profile.legal_person_name or real_name.id_number != number:
        raise ConflictError("登录账号已实名认证为其他人：法定代表人实名须与账号实名一致，请用法定代表人本人的账号"
                            "申请入驻，或联系客服重置账号实名", code="legal_person_other_identity")
    profile.legal_person_real_name, profile.legal_person_verified_at = real_name, timezone.now()
    profile.save(update_fields=["legal_person_real_name", "legal_person_verified_at", "updated_at"])
    return profile


def legal_person_masked(profile: SupplierProfile | None) -> str:
    return mask_name(str(profile.legal_person_name or "")) if profile is not None else ""


# --- the agreement ----------------------------------------------------------------------------------------------

def agreement_current() -> SupplierAgreement | None:
    """The newest agreement already published (a future publication date is not current yet)."""
    return SupplierAgreement.objects.filter(published_at__lte=timezone.now()).order_by("-published_at", "-pk").first()


def agreement_is_accepted(*, supplier: Supplier) -> bool:
    """True when the current agreement is accepted (or none is published)."""
    current = agreement_current()
    return current is None or AgreementAcceptance.objects.filter(supplier=supplier, agreement=current).exists()


def agreement_accept(*, supplier: Supplier, agreement_id: int, ip_address: str | None) -> AgreementAcceptance:
    """Accept the current version; the id of the version read must be the current one (a newer one may have been
    published while the page was open)."""
    current = agreement_current()
    if current is None or current.pk != agreement_id:
        raise ConflictError("协议已更新，请阅读最新版本后再同意", code="agreement_outdated")
    acceptance, _ = AgreementAcceptance.objects.get_or_create(
        supplier=supplier, agreement=current, defaults={"version": current.version, "ip_address": ip_address})
    return acceptance


# --- what is missing, submitting, reviewing ---------------------------------------------------------------------

class MissingItem(StrEnum):
    PROFILE = "profile"
    LEGAL_PERSON = "legal_person"
    BUSINESS_LICENCE = "business_licence"
    INDUSTRY_AUTHORISATION = "industry_authorisation"
    AGREEMENT = "agreement"


MISSING_MESSAGES = {
    MissingItem.PROFILE: "填写企业资料（企业名称、统一社会信用代码、法定代表人、联系人）",
    MissingItem.LEGAL_PERSON: "完成法定代表人实名认证",
    MissingItem.BUSINESS_LICENCE: "上传营业执照",
    MissingItem.INDUSTRY_AUTHORISATION: "上传行业授权文件",
    MissingItem.AGREEMENT: "阅读并同意最新版供货商协议",
}
REQUIRED_DOCUMENTS = {DocumentKind.BUSINESS_LICENCE: MissingItem.BUSINESS_LICENCE,
                      DocumentKind.INDUSTRY_AUTHORISATION: MissingItem.INDUSTRY_AUTHORISATION}


def onboarding_missing(*, supplier: Supplier) -> list[MissingItem]:
    """What the supplier must still do before it can submit, in the order the console lists it."""
    missing: list[MissingItem] = []
    profile = SupplierProfile.objects.filter(supplier=supplier).first()
    if profile is None:
        missing.append(MissingItem.PROFILE)
    if not legal_person_is_verified(profile):
        missing.append(MissingItem.LEGAL_PERSON)
    kinds = set(supplier.documents.values_list("kind", flat=True))
    missing += [item for kind, item in REQUIRED_DOCUMENTS.items() if kind not in kinds]
    if not agreement_is_accepted(supplier=supplier):
        missing.append(MissingItem.AGREEMENT)
    return missing


TRANSITIONS: dict[SupplierStatus, frozenset[SupplierStatus]] = {
    SupplierStatus.DRAFT: frozenset({SupplierStatus.PENDING_REVIEW}),
    SupplierStatus.NEEDS_MORE: frozenset({SupplierStatus.PENDING_REVIEW}),
    SupplierStatus.PENDING_REVIEW: frozenset({SupplierStatus.APPROVED, SupplierStatus.REJECTED,
                                              SupplierStatus.NEEDS_MORE}),
    SupplierStatus.APPROVED: frozenset({SupplierStatus.SUSPENDED}),
    SupplierStatus.SUSPENDED: frozenset({SupplierStatus.APPROVED}),
    SupplierStatus.REJECTED: frozenset(),
}


def _transition(*, supplier_id: int, to: SupplierStatus, reason: str = "", staff_id: int | None = None) -> Supplier:
    with transaction.atomic():
        supplier = Supplier.objects.select_for_update().filter(pk=supplier_id).first()
        if supplier is None:
            raise NotFoundError("供货商不存在", code="supplier_not_found")
        current = SupplierStatus(supplier.status)
        if to not in TRANSITIONS[current]:
            raise ConflictError("供货商状态为「%(current)s」，不能变为「%(target)s」",
                                code="supplier_illegal_transition",
                                params={"current": current.label, "target": to.label})
        supplier.status = to
        fields = ["status"]
        if to == SupplierStatus.APPROVED and supplier.approved_at is None:
            supplier.approved_at = timezone.now()
            fields.append("approved_at")
        supplier.save(update_fields=fields)
        SupplierReview.objects.create(supplier=supplier, from_status=current, to_status=to, reason=reason,
                                      staff_id=staff_id)
    return supplier


class OnboardingIncompleteError(ApplicationError):
    def __init__(self, missing: list[MissingItem]) -> None:
        items = "；".join(MISSING_MESSAGES[item] for item in missing)
        super().__init__("资料还不完整，请先：%(items)s", code="onboarding_incomplete", params={"items": items},
                         extra={"missing": [str(item) for item in missing]})


def supplier_submit(*, supplier: Supplier) -> Supplier:
    """DRAFT / NEEDS_MORE → PENDING_REVIEW when nothing is missing; otherwise the list of what is."""
    _require_editable(supplier)
    missing = onboarding_missing(supplier=supplier)
    if missing:
        raise OnboardingIncompleteError(missing)
    return _transition(supplier_id=supplier.pk, to=SupplierStatus.PENDING_REVIEW)


class ReviewDecision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    NEEDS_MORE = "needs_more"
    SUSPEND = "suspend"  # an approved supplier stops being routed; APPROVE reinstates it


def has_passing_sample_test(*, supplier_id: int) -> bool:
    return SampleTest.objects.filter(supplier_id=supplier_id, result=SampleResult.VALID).exists()


def supplier_review(*, supplier_id: int, decision: ReviewDecision, reason: str, staff_id: int) -> Supplier:
    """Staff decide on a supplier in review (or suspend an approved one, or reinstate a suspended one by approving
    it). Every decision but approving needs a reason (the supplier reads it); approving needs a passing sample test
    while KAMENG_SUPPLIER_SAMPLE_TEST_REQUIRED is on."""
    reason = reason.strip()
    if decision != ReviewDecision.APPROVE and not reason:
        raise ApplicationError("请填写原因：供货商会在后台看到它", code="review_reason_required")
    if decision == ReviewDecision.APPROVE and settings.KAMENG_SUPPLIER_SAMPLE_TEST_REQUIRED \
            and not has_passing_sample_test(supplier_id=supplier_id):
        raise ConflictError("还没有通过的样品测试：请先在「样品测试」中记录一次结果为有效的测试",
                            code="sample_test_required")
    target = {ReviewDecision.APPROVE: SupplierStatus.APPROVED, ReviewDecision.REJECT: SupplierStatus.REJECTED,
              ReviewDecision.NEEDS_MORE: SupplierStatus.NEEDS_MORE,
              ReviewDecision.SUSPEND: SupplierStatus.SUSPENDED}[decision]
    return _transition(supplier_id=supplier_id, to=target, reason=reason, staff_id=staff_id)


# --- what the console shows -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OnboardingOverview:
    supplier: Supplier
    missing: list[str]
    last_review: SupplierReview | None
    agreement: SupplierAgreement | None
    agreement_accepted: bool
    legal_person_verified: bool

    @property
    def is_editable(self) -> bool:
        return self.supplier.status in EDITABLE_STATUSES

    @property
    def can_sell(self) -> bool:
        return self.supplier.status == SupplierStatus.APPROVED and self.agreement_accepted


def onboarding_overview(*, supplier: Supplier) -> OnboardingOverview:
    current = agreement_current()
    accepted = current is None or AgreementAcceptance.objects.filter(supplier=supplier, agreement=current).exists()
    profile = SupplierProfile.objects.filter(supplier=supplier).first()
    return OnboardingOverview(
        supplier=supplier, missing=[MISSING_MESSAGES[item] for item in onboarding_missing(supplier=supplier)],
        last_review=supplier.reviews.exclude(reason="").order_by("-created_at", "-pk").first(),
        agreement=current, agreement_accepted=accepted, legal_person_verified=legal_person_is_verified(profile))


def supplier_can_sell_or_raise(*, supplier: Supplier) -> None:
    """Only a supplier under review or approved, that accepted the current agreement, creates offers and uploads
    keys: under review they serve the sample test (样品测试) staff run before approving; nothing is routed to a
    supplier before it is approved (routing and card-key bidding take approved suppliers only)."""
    if supplier.status not in (SupplierStatus.APPROVED, SupplierStatus.PENDING_REVIEW):
        raise ConflictError("供货商状态为「%(status)s」：提交审核后才能创建报价、上传卡密（审核通过前不会销售）",
                            code="supplier_not_approved", params={"status": supplier.get_status_display()})
    if not agreement_is_accepted(supplier=supplier):
        raise ConflictError("供货商协议已更新：请在概览页阅读并同意新版协议后继续", code="agreement_not_accepted")

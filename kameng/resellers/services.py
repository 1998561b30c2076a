"""Becoming a reseller (代理) and the staff decisions on it: apply, approve, reject, suspend, reactivate, appoint.

The states and the moves between them (one table, one `_transition`):
  (none) --apply--> pending --approve--> active --suspend--> suspended --reactivate--> active
                    pending --reject---> rejected --apply (again)--> pending
  (none) | pending | rejected | suspended --appoint (staff)--> active
An active reseller is priced at its tier (kameng.resellers.pricing); every move tells the price rule's caches after
commit. The reseller row is locked (`select_for_update`) for each decision, so two staff deciding at once do one
after the other and the second is checked against the first's outcome.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from kameng.core.errors import ApplicationError, ConflictError, NotFoundError
from kameng.resellers.models import Reseller, ResellerStatus, ResellerTier
from kameng.resellers.pricing import reseller_tables_changed

CONTACT_MAX = 100
NOTE_MAX = 2000
REASON_MAX = 200

# move → (the state it starts from, the state it leads to); appoint is apart (APPOINTABLE, any → active)
MOVES: dict[str, tuple[str, str]] = {
    "apply_again": (ResellerStatus.REJECTED, ResellerStatus.PENDING),
    "approve": (ResellerStatus.PENDING, ResellerStatus.ACTIVE),
    "reject": (ResellerStatus.PENDING, ResellerStatus.REJECTED),
    "suspend": (ResellerStatus.ACTIVE, ResellerStatus.SUSPENDED),
    "reactivate": (ResellerStatus.SUSPENDED, ResellerStatus.ACTIVE),
}
APPOINTABLE = frozenset({ResellerStatus.PENDING, ResellerStatus.REJECTED, ResellerStatus.SUSPENDED})


class ResellerStateError(ConflictError):
    """The reseller's state does not allow the move."""


class AlreadyAppliedError(ConflictError):
    """The user has applied already (or is a reseller)."""


class ResellerInputError(ApplicationError):
    """The application or the decision lacks what it needs."""


def can_move(from_status: str, move: str) -> bool:
    return MOVES[move][0] == from_status


def _transition(reseller: Reseller, move: str) -> None:
    to_status = MOVES[move][1]
    if not can_move(reseller.status, move):
        raise ResellerStateError(
            "代理状态为「%(from)s」，不能改为「%(to)s」", code="reseller_state",
            params={"from": ResellerStatus(reseller.status).label, "to": ResellerStatus(to_status).label})
    reseller.status = to_status


def _locked(reseller_id: int) -> Reseller:
    reseller = Reseller.objects.select_for_update().filter(pk=reseller_id).first()
    if reseller is None:
        raise NotFoundError("代理商不存在", code="reseller_not_found")
    return reseller


def _active_tier(tier_id: int) -> ResellerTier:
    tier = ResellerTier.objects.filter(pk=tier_id, is_active=True).first()
    if tier is None:
        raise ResellerInputError("请选择一个启用中的代理等级", code="tier_required")
    return tier


def _reason(reason: str, *, required: bool) -> str:
    reason = reason.strip()
    if required and not reason:
        raise ResellerInputError("请填写原因，代理商会在代理后台看到", code="reason_required")
    if len(reason) > REASON_MAX:
        raise ResellerInputError("原因最多 %(max)s 个字", code="reason_too_long", params={"max": REASON_MAX})
    return reason


def _reviewed(reseller: Reseller, *, staff_id: int, reason: str) -> None:
    reseller.review_reason = reason
    reseller.reviewed_by_id = staff_id
    reseller.reviewed_at = timezone.now()
    reseller.save()
    transaction.on_commit(reseller_tables_changed)


def reseller_apply(*, user_id: int, contact: str, note: str) -> Reseller:
    """A buyer applies to become a reseller (or again after a rejection). Refused while an application is pending
    or once a reseller."""
    contact, note = contact.strip(), note.strip()
    if not contact:
        raise ResellerInputError("请填写联系方式（手机、QQ 或微信），方便审核时联系您", code="contact_required")
    if len(contact) > CONTACT_MAX or len(note) > NOTE_MAX:
        raise ResellerInputError("联系方式最多 %(contact)s 个字，申请说明最多 %(note)s 个字",
                                 code="application_too_long", params={"contact": CONTACT_MAX, "note": NOTE_MAX})
    try:
        with transaction.atomic():
            reseller = Reseller.objects.select_for_update().filter(user_id=user_id).first()
            if reseller is None:
                return Reseller.objects.create(user_id=user_id, contact=contact, application_note=note,
                                               status=ResellerStatus.PENDING)
            if reseller.status != ResellerStatus.REJECTED:
                raise AlreadyAppliedError("您已提交过代理申请（当前状态：%(status)s），无需重复申请",
                                          code="reseller_already_applied",
                                          params={"status": ResellerStatus(reseller.status).label})
            _transition(reseller, "apply_again")
            reseller.contact, reseller.application_note = contact, note
            reseller.review_reason = ""
            reseller.save()
            return reseller
    except IntegrityError as error:  # two applications of one user at once: the other one landed
        raise AlreadyAppliedError("您已提交过代理申请，无需重复申请", code="reseller_already_applied") from error


def reseller_approve(*, reseller_id: int, tier_id: int, staff_id: int, reason: str = "") -> Reseller:
    """Staff approve a pending application at a tier."""
    with transaction.atomic():
        reseller = _locked(reseller_id)
        tier = _active_tier(tier_id)
        _transition(reseller, "approve")
        reseller.tier = tier
        _reviewed(reseller, staff_id=staff_id, reason=_reason(reason, required=False))
    return reseller


def reseller_reject(*, reseller_id: int, staff_id: int, reason: str) -> Reseller:
    """Staff reject a pending application, saying why (the applicant sees it and may apply again)."""
    with transaction.atomic():
        reseller = _locked(reseller_id)
        reason = _reason(reason, required=True)
        _transition(reseller, "reject")
        _reviewed(reseller, staff_id=staff_id, reason=reason)
    return reseller


def reseller_suspend(*, reseller_id: int, staff_id: int, reason: str) -> Reseller:
    """Staff suspend an active reseller: from then on it buys at ordinary prices and the console's active pages
    are closed to it."""
    with transaction.atomic():
        reseller = _locked(reseller_id)
        reason = _reason(reason, required=True)
        _transition(reseller, "suspend")
        _reviewed(reseller, staff_id=staff_id, reason=reason)
    return reseller


def reseller_reactivate(*, reseller_id: int, staff_id: int, reason: str = "") -> Reseller:
    """Staff reactivate a suspended reseller at its tier."""
    with transaction.atomic():
        reseller = _locked(reseller_id)
        # the state first: a pending applicant (no tier yet) is approved, not reactivated
        if reseller.tier_id is None and can_move(reseller.status, "reactivate"):
            raise ResellerInputError("该代理没有代理等级，请用「任命」指定等级", code="tier_required")
        _transition(reseller, "reactivate")
        _reviewed(reseller, staff_id=staff_id, reason=_reason(reason, required=False))
    return reseller


def reseller_appoint(*, user_id: int, tier_id: int, staff_id: int, reason: str = "") -> Reseller:
    """Staff make a user a reseller directly at a tier, whether or not it applied (not one already active)."""
    with transaction.atomic():
        tier = _active_tier(tier_id)
        reseller = Reseller.objects.select_for_update().filter(user_id=user_id).first()
        if reseller is None:
            reseller = Reseller(user_id=user_id)
        elif reseller.status not in APPOINTABLE:
            raise ResellerStateError("该用户已是正常状态的代理，如需调整等级，请在该代理的页面使用「调整等级」",
                                     code="reseller_state")
        reseller.status = ResellerStatus.ACTIVE
        reseller.tier = tier
        _reviewed(reseller, staff_id=staff_id, reason=_reason(reason, required=False) or "后台任命")
    return reseller


def reseller_tier_change(*, reseller_id: int, tier_id: int) -> Reseller:
    """Staff move a reseller to another tier (any state)."""
    with transaction.atomic():
        reseller = _locked(reseller_id)
        reseller.tier = _active_tier(tier_id)
        reseller.save(update_fields=["tier"])
        transaction.on_commit(reseller_tables_changed)
    return reseller

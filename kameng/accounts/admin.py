"""Back office for users, staff groups and real-name verifications. Phone numbers, real names and ID numbers appear
masked and are found by exact match only, through their keyed blind index (the database holds no plaintext to
search); a verification is reset by an action, never edited."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group, Permission
from django.db.models import ManyToManyField, QuerySet
from django.forms import ModelMultipleChoiceField
from django.http import HttpRequest
from unfold.admin import ModelAdmin
from unfold.decorators import display
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from kameng.accounts.forms import StaffLoginForm
from kameng.accounts.identity import mask_id_number, mask_name, normalise_id_number
from kameng.accounts.models import PhoneCode, RealName, User
from kameng.accounts.paypin import payment_pin_reset
from kameng.accounts.selectors import identity_index_of, phone_index_of
from kameng.accounts.services import realname_reset
from kameng.core.admin import ProtectedDeleteSummaryMixin, ReadOnlyAdminMixin
from kameng.core.masking import mask_phone

PERMISSION_ACTIONS = {"add": "新增", "change": "修改", "delete": "删除", "view": "查看"}

admin.site.unregister(Group)
# The back office's login counts failures with the storefront's (kameng.accounts.throttle) and says when it is locked.
admin.site.login_form = StaffLoginForm


def permission_label(permission: Permission) -> str:
    """Django names the default permissions in English when it creates them ("Can add 分类"): say them in Chinese."""
    action, _, model_name = permission.codename.partition("_")
    verb = PERMISSION_ACTIONS.get(action)
    model = permission.content_type.model_class()
    if verb is None or model is None or model_name != permission.content_type.model:
        return str(permission)
    return f"{permission.content_type} | {verb}{model._meta.verbose_name}"


class PermissionChoiceField(ModelMultipleChoiceField):
    def label_from_instance(self, obj: Permission) -> str:
        return permission_label(obj)


class ChinesePermissionLabelsMixin:
    def formfield_for_manytomany(self, db_field: ManyToManyField[Any, Any], request: HttpRequest | None = None,
                                 **kwargs: Any) -> ModelMultipleChoiceField[Any] | None:
        if db_field.name in ("permissions", "user_permissions"):
            kwargs.setdefault("form_class", PermissionChoiceField)
        field: ModelMultipleChoiceField[Any] | None = super().formfield_for_manytomany(  # type: ignore[misc]
            db_field, request, **kwargs)
        return field


@admin.register(Group)
class GroupAdmin(ChinesePermissionLabelsMixin, BaseGroupAdmin, ModelAdmin):
    pass


@admin.register(User)
class UserAdmin(ProtectedDeleteSummaryMixin, ChinesePermissionLabelsMixin, BaseUserAdmin, ModelAdmin):
    # A buyer's orders, wallet and payments keep the account: deleting would list every one of them.
    delete_refusal_hint = "请改为取消「有效」停用该账号"
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm
    list_display = ("username", "masked_phone", "email", "has_payment_pin", "is_staff", "is_active", "date_joined",
                    "last_login")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    search_fields = ("username", "email", "first_name", "last_name")
    search_help_text = "按用户名、邮箱搜索；输入完整的 11 位手机号可按手机号精确查找"
    readonly_fields = ("masked_phone", "last_login", "date_joined", "has_payment_pin", "password_free_limit",
                       "payment_pin_failures", "payment_pin_locked_until")
    actions = ["reset_payment_pin"]
    fieldsets = (
        (None, {"fields": ("username", "password", "masked_phone")}),
        ("个人信息", {"fields": ("first_name", "last_name", "email")}),
        ("权限", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("支付设置", {"fields": ("has_payment_pin", "password_free_limit", "payment_pin_failures",
                             "payment_pin_locked_until"),
                  "description": "重置支付密码：在用户列表中勾选该用户，选择「重置支付密码」。"}),
        ("重要日期", {"fields": ("last_login", "date_joined")}),
    )

    @display(description="支付密码", boolean=True)
    def has_payment_pin(self, obj: User) -> bool:
        return bool(obj.payment_pin)

    @admin.action(description="重置支付密码（清除支付密码、锁定和免密额度）", permissions=["change"])
    def reset_payment_pin(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        user_ids = list(queryset.values_list("pk", flat=True))
        for user_id in user_ids:
            payment_pin_reset(user_id=user_id)
        self.message_user(request, f"已重置 {len(user_ids)} 个用户的支付密码，他们可以重新设置。")

    @display(description="手机号")
    def masked_phone(self, obj: User) -> str:
        return mask_phone(str(obj.phone)) if obj.phone else "—"

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[User],
                           search_term: str) -> tuple[QuerySet[User], bool]:
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term.isdigit() and len(term) == 11:
            results = results | queryset.filter(phone_index=phone_index_of(term))
        return results, may_have_duplicates


@admin.register(RealName)
class RealNameAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """Who is verified, by which provider, and why an attempt failed; the name and ID number masked. Staff reset a
    verification (the person may then verify again, this account or another) rather than edit it."""

    list_display = ("user", "status", "masked_name", "masked_id_number", "provider", "verified_at", "attempts",
                    "updated_at")
    list_filter = ("status", "provider")
    list_select_related = ("user",)
    search_fields = ("=user__username",)
    search_help_text = "按用户名搜索；输入完整的 18 位身份证号码可精确查找使用该号码认证的账号"
    fields = ("user", "status", "masked_name", "masked_id_number", "identity_slot", "provider", "provider_request_id",
              "rejection_code", "verified_at", "pending_since", "attempts_day", "attempts", "updated_at")
    readonly_fields = fields
    actions = ("reset",)

    @display(description="姓名")
    def masked_name(self, obj: RealName) -> str:
        return mask_name(str(obj.name)) if obj.name else "—"

    @display(description="身份证号")
    def masked_id_number(self, obj: RealName) -> str:
        return mask_id_number(str(obj.id_number)) if obj.id_number else "—"

    def has_reset_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("accounts.change_realname")

    @admin.action(description="重置实名认证（清除姓名与身份证号，可重新认证）", permissions=["reset"])
    def reset(self, request: HttpRequest, queryset: QuerySet[RealName]) -> None:
        user_ids = list(queryset.values_list("user_id", flat=True))
        for user_id in user_ids:
            realname_reset(user_id=user_id)
        messages.success(request, f"已重置 {len(user_ids)} 个账号的实名认证")

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[RealName],
                           search_term: str) -> tuple[QuerySet[RealName], bool]:
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = normalise_id_number(search_term)
        if len(term) == 18 and term[:17].isdigit():
            results = results | queryset.filter(id_number_index=identity_index_of(term))
        return results, may_have_duplicates


@admin.register(PhoneCode)
class PhoneCodeAdmin(ModelAdmin):
    """What was sent and what became of it; the code is only a keyed hash and the number only its index, so
    nothing here can be used to log in. Read-only: a code is changed by using it, not by staff."""

    list_display = ("purpose", "created_at", "expires_at", "attempts", "used_at")
    list_filter = ("purpose",)
    date_hierarchy = "created_at"
    fields = ("purpose", "created_at", "expires_at", "attempts", "used_at")
    readonly_fields = fields
    search_help_text = "输入完整的 11 位手机号可查找该号码的验证码记录"
    search_fields = ("purpose",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: PhoneCode | None = None) -> bool:
        return False

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[PhoneCode],
                           search_term: str) -> tuple[QuerySet[PhoneCode], bool]:
        term = search_term.strip()
        if term.isdigit() and len(term) == 11:
            return queryset.filter(phone_key=phone_index_of(term).hex()), False
        return super().get_search_results(request, queryset, search_term)


from kameng.accounts import staff_otp_admin  # noqa: E402, F401  # staff authenticators (2FA)

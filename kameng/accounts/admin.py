"""Back office for users and staff groups. Phone numbers appear masked and are found by exact match only,
through their keyed blind index (the database holds no plaintext to search)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
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
from kameng.accounts.models import User
from kameng.accounts.paypin import payment_pin_reset
from kameng.accounts.selectors import phone_index_of
from kameng.core.admin import ProtectedDeleteSummaryMixin
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

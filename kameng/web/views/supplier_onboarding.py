"""Supplier onboarding pages (供货商入驻): applying, company data with the legal person's real name and the
qualification documents, the agreement, submitting for review, and the permission-checked document download.

The apply page is for any logged-in account (it is how a buyer becomes a supplier); the others are console pages
(`supplier_required`), scoped to request.supplier. A document is served only to its supplier's owner and to staff
allowed to view documents; anyone else gets 404.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from kameng.accounts.identity import mask_name
from kameng.catalog.models import Product
from kameng.core.errors import ApplicationError
from kameng.core.http import client_address
from kameng.core.masking import mask_phone
from kameng.suppliers.documents import document_path, supplier_document_for_reader, supplier_document_upload
from kameng.suppliers.models import DocumentKind, Supplier, SupplierProfile
from kameng.suppliers.onboarding import (
    agreement_accept,
    agreement_current,
    agreement_is_accepted,
    legal_person_is_verified,
    supplier_apply,
    supplier_legal_person_verify,
    supplier_profile_save,
    supplier_submit,
)
from kameng.web.errors import message_for, status_for
from kameng.web.http import BuyerRequest
from kameng.web.views.supplier_console import SUPPLIER_CONSOLE_NAV, SupplierRequest, console_render, supplier_required

SUPPLIER_CONSOLE_NAV.append(("web:supplier_company", gettext_lazy("企业资料")))

DOCUMENT_VIEW_PERMISSION = "suppliers.view_supplierdocument"

# Service texts shown on these pages (kameng.suppliers.onboarding, .documents), for the English catalog.
ONBOARDING_TEXTS = (
    gettext_noop("该账号已是供货商"),
    gettext_noop("请填写供货商名称"),
    gettext_noop("供货商名称最多 100 个字"),
    gettext_noop("当前状态（%(status)s）不能修改入驻资料"),
    gettext_noop("请填写企业名称"),
    gettext_noop("统一社会信用代码应为 18 位数字或大写字母（不含 I、O、Z、S、V）"),
    gettext_noop("统一社会信用代码校验位不正确，请核对营业执照"),
    gettext_noop("请填写联系人"),
    gettext_noop("联系电话应为 11 位手机号码"),
    gettext_noop("请先填写企业资料（含法定代表人姓名）"),
    gettext_noop("法定代表人已完成实名认证"),
    gettext_noop("登录账号已实名认证为其他人：法定代表人实名须与账号实名一致，请用法定代表人本人的账号申请入驻，或联系客服重置账号实名"),
    gettext_noop("协议已更新，请阅读最新版本后再同意"),
    gettext_noop("资料还不完整，请先：%(items)s"),
    gettext_noop("填写企业资料（企业名称、统一社会信用代码、法定代表人、联系人）"),
    gettext_noop("完成法定代表人实名认证"),
    gettext_noop("上传营业执照"),
    gettext_noop("上传行业授权文件"),
    gettext_noop("阅读并同意最新版供货商协议"),
    gettext_noop("当前状态（%(status)s）不能上传资质文件"),
    gettext_noop("请选择文件类型"),
    gettext_noop("商品授权协议须选择对应的商品"),
    gettext_noop("文件是空的，请重新选择"),
    gettext_noop("只能上传 PDF、JPG 或 PNG 文件（按文件内容识别，改扩展名无效）"),
    gettext_noop("供货商状态为「%(current)s」，不能变为「%(target)s」"),
    # supplier statuses and document kinds (kameng.suppliers.models)
    gettext_noop("资料填写中"),
    gettext_noop("待审核"),
    gettext_noop("需补充资料"),
    gettext_noop("已通过"),
    gettext_noop("已拒绝"),
    gettext_noop("已暂停"),
    gettext_noop("营业执照"),
    gettext_noop("行业授权"),
    gettext_noop("商品授权协议"),
)


class ApplyForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("供货商名称"), max_length=100,
                           help_text=gettext_lazy("在后台和报价中显示，例如公司简称"),
                           error_messages={"required": gettext_lazy("请填写供货商名称")},
                           widget=forms.TextInput(attrs={"data-testid": "apply-name"}))


class ProfileForm(forms.Form):
    company_name = forms.CharField(label=gettext_lazy("企业名称"), max_length=100)
    credit_code = forms.CharField(label=gettext_lazy("统一社会信用代码"), max_length=30,
                                  help_text=gettext_lazy("营业执照上的 18 位代码"))
    legal_person_name = forms.CharField(label=gettext_lazy("法定代表人姓名"), max_length=40, required=False,
                                        help_text=gettext_lazy("已填写时留空表示不修改"))
    contact_name = forms.CharField(label=gettext_lazy("联系人"), max_length=50, required=False,
                                   help_text=gettext_lazy("已填写时留空表示不修改"))
    contact_phone = forms.CharField(label=gettext_lazy("联系电话"), max_length=20, required=False,
                                    help_text=gettext_lazy("已填写时留空表示不修改"))
    business_scope = forms.CharField(label=gettext_lazy("经营范围"), required=False,
                                     widget=forms.Textarea(attrs={"rows": 3}))


class LegalPersonForm(forms.Form):
    id_number = forms.CharField(label=gettext_lazy("法定代表人身份证号码"), max_length=30,
                                widget=forms.TextInput(attrs={"autocomplete": "off", "data-testid": "lp-id-number"}))


class DocumentForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("文件类型"), choices=DocumentKind.choices)
    product = forms.ModelChoiceField(label=gettext_lazy("商品（商品授权协议必选）"), required=False,
                                     queryset=Product.objects.order_by("name"))
    file = forms.FileField(label=gettext_lazy("文件"), help_text=gettext_lazy("PDF、JPG 或 PNG，不超过 10 MB"))


@never_cache
@require_http_methods(["GET", "POST"])
@login_required
def supplier_apply_view(request: BuyerRequest) -> HttpResponse:
    if Supplier.objects.filter(owner_id=request.user.pk).exists():
        return redirect("web:supplier_home")
    form = ApplyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            supplier_apply(user_id=request.user.pk, name=form.cleaned_data["name"])
        except ApplicationError as error:
            form.add_error("name", message_for(error))
        else:
            messages.success(request, _("已创建供货商账号，请填写企业资料"))
            return redirect("web:supplier_company")
    status = 400 if request.method == "POST" else 200
    return render(request, "web/supplier/apply.html", {"form": form}, status=status)


def _company_context(request: SupplierRequest, **forms_given: forms.Form) -> dict[str, object]:
    supplier = request.supplier
    profile = SupplierProfile.objects.filter(supplier=supplier).first()
    initial = ({"company_name": profile.company_name, "credit_code": profile.credit_code,
                "business_scope": profile.business_scope} if profile else {})
    masked = ({"legal_person": mask_name(str(profile.legal_person_name or "")),
               "contact_name": mask_name(str(profile.contact_name or "")),
               "contact_phone": mask_phone(str(profile.contact_phone or ""))} if profile else {})
    return {
        "profile": profile, "masked": masked, "legal_person_verified": legal_person_is_verified(profile),
        "is_editable": supplier.status in {"draft", "needs_more"},
        "profile_form": forms_given.get("profile_form") or ProfileForm(initial=initial),
        "legal_person_form": forms_given.get("legal_person_form") or LegalPersonForm(),
        "document_form": forms_given.get("document_form") or DocumentForm(),
        "documents": supplier.documents.select_related("product").order_by("pk"),
    }


def _kept(profile: SupplierProfile | None, field: str) -> str:
    """A personal field left blank keeps its saved value (the page shows it only masked)."""
    value = getattr(profile, field, None) if profile is not None else None
    return str(value) if value else ""


@never_cache
@sensitive_post_parameters("legal_person_name", "contact_name", "contact_phone")
@require_http_methods(["GET", "POST"])
@supplier_required
def supplier_company(request: SupplierRequest) -> HttpResponse:
    if request.method == "GET":
        return console_render(request, "web/supplier/company.html", _company_context(request))
    form = ProfileForm(request.POST)
    if not form.is_valid():
        return console_render(request, "web/supplier/company.html", _company_context(request, profile_form=form),
                              status=400)
    data = form.cleaned_data
    current = SupplierProfile.objects.filter(supplier=request.supplier).first()
    try:
        supplier_profile_save(
            supplier=request.supplier, company_name=data["company_name"], credit_code=data["credit_code"],
            legal_person_name=data["legal_person_name"] or _kept(current, "legal_person_name"),
            contact_name=data["contact_name"] or _kept(current, "contact_name"),
            contact_phone=data["contact_phone"] or _kept(current, "contact_phone"),
            business_scope=data["business_scope"])
    except ApplicationError as error:
        form.add_error(None, message_for(error))
        return console_render(request, "web/supplier/company.html", _company_context(request, profile_form=form),
                              status=status_for(error))
    messages.success(request, _("企业资料已保存"))
    return redirect("web:supplier_company")


@never_cache
@sensitive_post_parameters("id_number")
@require_POST
@supplier_required
def supplier_legal_person(request: SupplierRequest) -> HttpResponse:
    form = LegalPersonForm(request.POST)
    if form.is_valid():
        try:
            supplier_legal_person_verify(supplier=request.supplier, id_number=form.cleaned_data["id_number"])
        except ApplicationError as error:
            form.add_error("id_number", message_for(error))
            response = console_render(request, "web/supplier/company.html",
                                      _company_context(request, legal_person_form=form), status=error.status_code)
            if "retry_after" in error.extra:
                response["Retry-After"] = str(error.extra["retry_after"])
            return response
        messages.success(request, _("法定代表人实名认证成功"))
        return redirect("web:supplier_company")
    return console_render(request, "web/supplier/company.html", _company_context(request, legal_person_form=form),
                          status=400)


@require_POST
@supplier_required
def supplier_document_upload_view(request: SupplierRequest) -> HttpResponse:
    form = DocumentForm(request.POST, request.FILES)
    if form.is_valid():
        product = form.cleaned_data["product"]
        try:
            supplier_document_upload(supplier=request.supplier, kind=form.cleaned_data["kind"],
                                     upload=form.cleaned_data["file"], product_id=product.pk if product else None)
        except ApplicationError as error:
            form.add_error("file", message_for(error))
            return console_render(request, "web/supplier/company.html",
                                  _company_context(request, document_form=form), status=status_for(error))
        messages.success(request, _("文件已上传"))
        return redirect("web:supplier_company")
    return console_render(request, "web/supplier/company.html", _company_context(request, document_form=form),
                          status=400)


@never_cache
@require_GET
@login_required
def supplier_document_download(request: BuyerRequest, document_id: int) -> FileResponse:
    is_staff = bool(request.user.is_staff and request.user.has_perm(DOCUMENT_VIEW_PERMISSION))
    try:
        document = supplier_document_for_reader(user_id=request.user.pk, is_staff=is_staff, document_id=document_id)
    except ApplicationError:
        raise Http404("文件不存在") from None
    path = document_path(document)
    if not path.is_file():
        raise Http404("文件不存在")
    response = FileResponse(path.open("rb"), as_attachment=True, filename=document.original_name or path.name,
                            content_type=document.content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@never_cache
@require_http_methods(["GET", "POST"])
@supplier_required
def supplier_agreement(request: SupplierRequest) -> HttpResponse:
    current = agreement_current()
    if request.method == "POST":
        try:
            agreement_id = int(request.POST.get("agreement_id", ""))
        except ValueError:
            agreement_id = 0
        try:
            agreement_accept(supplier=request.supplier, agreement_id=agreement_id,
                             ip_address=client_address(request) or None)
        except ApplicationError as error:
            return console_render(request, "web/supplier/agreement.html",
                                  {"agreement": current, "error_message": message_for(error),
                                   "accepted": agreement_is_accepted(supplier=request.supplier)},
                                  status=status_for(error))
        messages.success(request, _("已同意供货商协议"))
        return redirect("web:supplier_home")
    return console_render(request, "web/supplier/agreement.html",
                          {"agreement": current, "accepted": agreement_is_accepted(supplier=request.supplier)})


@require_POST
@supplier_required
def supplier_submit_view(request: SupplierRequest) -> HttpResponse:
    try:
        supplier_submit(supplier=request.supplier)
    except ApplicationError as error:
        messages.error(request, message_for(error))
        return redirect("web:supplier_home")
    messages.success(request, _("已提交审核，请等待平台审核"))
    return redirect("web:supplier_home")

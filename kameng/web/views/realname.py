"""The account's real-name page (实名认证): the form until verified, the masked name and number after."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from kameng.accounts.selectors import realname_of
from kameng.accounts.services import realname_verify
from kameng.core.errors import ApplicationError
from kameng.web.errors import message_for, rejected
from kameng.web.forms import RealNameAutofillPreviewForm, RealNameForm
from kameng.web.http import BuyerRequest

# Which field a refusal of realname_verify is about; the others (mismatch, number taken, too many attempts, the
# provider unavailable) show above the form.
REALNAME_ERROR_FIELDS = {
    "name_format": "name", "realname_invalid_name": "name",
    "id_number_format": "id_number", "id_number_legacy": "id_number", "id_number_checksum": "id_number",
    "id_number_birth_date": "id_number", "id_number_region": "id_number", "realname_invalid_id_number": "id_number",
    "realname_no_record": "id_number",
}


def _context(request: BuyerRequest, form: RealNameForm | None = None) -> dict[str, object]:
    view = realname_of(user_id=request.user.pk)
    autofill = None
    if view.is_verified:
        autofill = RealNameAutofillPreviewForm()
        autofill.autofill_real_name(user_id=request.user.pk)
    return {"page_url": reverse("web:realname"), "realname": view, "form": form or RealNameForm(),
            "autofill": autofill}


@never_cache  # the page shows the masked identity, and a refused form echoes what was typed
@sensitive_post_parameters("name", "id_number")  # hidden from Django's error reports
@require_http_methods(["GET", "POST"])
@login_required
def realname(request: BuyerRequest) -> HttpResponse:
    if request.method == "GET":
        return render(request, "web/realname.html", _context(request))
    form = RealNameForm(request.POST)
    if not form.is_valid():
        return render(request, "web/realname.html", _context(request, form), status=400)
    try:
        realname_verify(user_id=request.user.pk, name=form.cleaned_data["name"],
                        id_number=form.cleaned_data["id_number"])
    except ApplicationError as error:
        field = REALNAME_ERROR_FIELDS.get(error.code)
        if field is not None:
            form.add_error(field, message_for(error))
            response = render(request, "web/realname.html", _context(request, form), status=error.status_code)
        else:
            response = rejected(request, "web/realname.html", _context(request, form), error)
            response.status_code = error.status_code  # 503 too: the provider gave no answer, try again
        if "retry_after" in error.extra:
            response["Retry-After"] = str(error.extra["retry_after"])
        return response
    messages.success(request, _("实名认证成功"))
    return redirect("web:realname")

"""/admin/otp/: the staff 2FA pages (kameng/accounts/staff_views.py), mounted before the admin in kameng/urls.py."""

from django.urls import path

from kameng.accounts.staff_views import staff_otp_enrol, staff_otp_verify

app_name = "staff_otp"

urlpatterns = [
    path("verify/", staff_otp_verify, name="verify"),
    path("enrol/", staff_otp_enrol, name="enrol"),
]

"""Payments' URLs (namespace "payments"), included at the site root. The paths are what gateways are configured
with and sign: they never change (kameng.payments.links builds them)."""

from django.urls import path

from kameng.payments import views

app_name = "payments"

urlpatterns = [
    path("pay/notify/<slug:channel_code>/", views.payment_notify, name="notify"),
    path("pay/return/", views.payment_return, name="return"),
]

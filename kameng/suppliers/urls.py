"""Suppliers' URLs (namespace "suppliers"), included at the site root. Upstreams are configured with these paths
(kameng.suppliers.dispatch.topup_notify_url builds them): they never change."""

from django.urls import path

from kameng.suppliers import views

app_name = "suppliers"

urlpatterns = [
    path("suppliers/callback/<int:supplier_id>/", views.topup_callback, name="callback"),
]

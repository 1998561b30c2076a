"""The simulated Alipay, mounted at /sim/alipay/ (inside the "simulators" URL namespace)."""

from django.urls import URLPattern, path

from kameng.simulators.alipay import views

urlpatterns: list[URLPattern] = [
    path("gateway.do", views.gateway, name="alipay_gateway"),
    path("cashier/<str:trade_no>/", views.cashier, name="alipay_cashier"),
    path("qr/<str:trade_no>/", views.cashier, name="alipay_qr"),
    path("cashier/<str:trade_no>/pay/", views.cashier_pay, name="alipay_cashier_pay"),
]

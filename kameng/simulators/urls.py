"""The simulated 易支付 gateway, mounted at /sim/ when KAMENG_SIMULATORS_ENABLED (never in production)."""

from django.urls import include, path

from kameng.simulators import onetap, views

app_name = "simulators"

urlpatterns = [
    path("epay/submit.php", views.epay_submit, name="epay_submit"),
    path("epay/mapi.php", views.epay_mapi, name="epay_mapi"),
    path("epay/api.php", views.epay_api, name="epay_api"),
    path("epay/cashier/<str:trade_no>/", views.epay_cashier, name="epay_cashier"),
    path("epay/cashier/<str:trade_no>/pay/", views.epay_cashier_pay, name="epay_cashier_pay"),
    path("epay/cashier/<str:trade_no>/cancel/", views.epay_cashier_cancel, name="epay_cashier_cancel"),
    # The carrier of one-tap login (一键登录): no models, only a page that signs tokens.
    path("onetap/", onetap.onetap_carrier, name="onetap"),
    # One simulator app per protocol, each with its own models and migrations.
    path("epay-v2/", include("kameng.simulators.epay_v2.urls")),
    path("alipay/", include("kameng.simulators.alipay.urls")),
    path("wechat/", include("kameng.simulators.wechat.urls")),
    path("unionpay/", include("kameng.simulators.unionpay.urls")),
]

"""Storefront URLs (namespace "web")."""

from django.urls import path

from kameng.web.views import (
    account,
    accounts,
    membership,
    orders,
    points,
    realname,
    search,
    security,
    shop,
    supplier_console,
    supplier_rating,
    wallet,
)

app_name = "web"

urlpatterns = [
    path("", shop.home, name="home"),
    path("search/", search.search, name="search"),
    path("products/<int:product_id>/", shop.product_detail, name="product"),
    path("products/<int:product_id>/buy/", shop.buy, name="buy"),
    path("supplier/", supplier_console.supplier_home, name="supplier_home"),
    path("supplier/rating/", supplier_rating.supplier_rating, name="supplier_rating"),
    path("login/", accounts.StoreLoginView.as_view(), name="login"),
    path("login/sms/send/", accounts.login_sms_send, name="login_sms_send"),
    path("login/sms/", accounts.login_sms, name="login_sms"),
    path("login/onetap/", accounts.login_onetap, name="login_onetap"),
    path("logout/", accounts.StoreLogoutView.as_view(), name="logout"),
    path("register/", accounts.register, name="register"),
    path("account/", account.account, name="account"),
    path("account/email/", account.account_email, name="account_email"),
    path("account/email/remove/", account.account_email_remove, name="account_email_remove"),
    path("account/email/confirm/<str:token>/", account.account_email_confirm, name="account_email_confirm"),
    path("account/realname/", realname.realname, name="realname"),
    path("orders/", orders.order_list, name="order_list"),
    path("orders/<str:number>/", orders.order_detail, name="order_detail"),
    path("orders/<str:number>/status/", orders.order_status, name="order_status"),
    path("orders/<str:number>/progress/", orders.order_progress, name="order_progress"),
    path("orders/<str:number>/keys.txt", orders.order_keys_txt, name="order_keys_txt"),
    path("orders/<str:number>/pay/", orders.order_pay, name="order_pay"),
    path("orders/<str:number>/pay/<str:payment_number>/", orders.order_payment, name="order_payment"),
    path("orders/<str:number>/cancel/", orders.order_cancel_view, name="order_cancel"),
    path("account/membership/", membership.membership, name="membership"),
    path("account/points/", points.points_account, name="points"),
    path("points/shop/", points.points_shop, name="points_shop"),
    path("points/shop/<int:item_id>/exchange/", points.points_exchange, name="points_exchange"),
    path("wallet/", wallet.wallet, name="wallet"),
    path("wallet/topup/", wallet.topup, name="topup"),
    path("wallet/topups/return/", wallet.topup_return, name="topup_return"),
    path("wallet/topups/<str:number>/", wallet.topup_status, name="topup_status"),
    path("account/security/", security.security, name="security"),
    path("account/security/pin/", security.security_pin, name="security_pin"),
    path("account/security/password-free/", security.security_limit, name="security_limit"),
]

"""URL map: storefront, staff admin, JSON API, payments' gateway edges (notify, return), suppliers' top-up
callbacks and signed pushes, and the built-in gateway simulator (when enabled)."""

from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path

from kameng.api.urls import api_urls
from kameng.openapi.api import api_urls as openapi_v1_urls

# Staff who log in at /admin/login/ land on the admin index, not on the storefront (LOGIN_REDIRECT_URL).
admin.site.login_template = "admin/login_with_next.html"

# The database out of reach answers 503 even when a middleware, not a view, met it (kameng.web.errors).
handler500 = "kameng.web.errors.server_error"

urlpatterns: list[URLPattern | URLResolver] = [
    path("admin/", admin.site.urls),
    path("api/", api_urls()),
    path("openapi/v1/", openapi_v1_urls()),  # resellers' signed Open API v1 (kameng.openapi)
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("kameng.payments.urls")),
    path("", include("kameng.suppliers.urls")),
    path("", include("kameng.web.urls")),
]

# acg-faka 店铺共享 docking (kameng.openapi.acg_shared): answers only while KAMENG_ACG_SHARED_ENABLED.
urlpatterns.append(path("openapi/acg/", include("kameng.openapi.acg_urls")))

# Uploaded product pictures, served by Django only with DEBUG (static() adds nothing otherwise): in production the
# web server in front serves MEDIA_ROOT at MEDIA_URL.
urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

if settings.KAMENG_SIMULATORS_ENABLED:
    urlpatterns.append(path("sim/", include("kameng.simulators.urls")))

# Staff 2FA pages (kameng.accounts.staff_views), ahead of the admin's own catch-all under /admin/.
urlpatterns.insert(0, path("admin/otp/", include("kameng.accounts.staff_urls", namespace="staff_otp")))

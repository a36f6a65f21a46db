from django.contrib import admin
from django.http import HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from loyalty.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/", include("loyalty.api.urls")),
    # Browsers ask for /favicon.ico on pages that name none (the error pages).
    path("favicon.ico", lambda request: HttpResponsePermanentRedirect(static("loyalty/favicon.svg"))),
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
]

handler500 = "loyalty.errors.server_error"

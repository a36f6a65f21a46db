"""Routes of the API: the till endpoints, the OpenAPI schema and its interactive docs.

Included from ``loyalty/urls.py`` under ``api/``. The schema and the docs are public and
read-only (no authentication, GET only); the docs are Swagger UI from
drf-spectacular-sidecar, served locally, with its init script served as a separate
file (``?script``) so the page runs under ``script-src 'self'``.
"""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny

from compliance.api import consumer as consumer_api
from loyalty.ledger.api import points, redemptions
from vouchers.api import urls as vouchers_urls

consumer_patterns = [
    path("terms", consumer_api.TermsApi.as_view(), name="terms"),
    path("me/terms", consumer_api.MeTermsApi.as_view(), name="me-terms"),
    path("me/terms/accept", consumer_api.MeTermsAcceptApi.as_view(), name="me-terms-accept"),
    path("me/complaints", consumer_api.MeComplaintsApi.as_view(), name="me-complaints"),
    path("me/complaints/<str:complaint_id>", consumer_api.MeComplaintApi.as_view(), name="me-complaint"),
]

app_name = "api"

pos_patterns = [
    path("purchases", points.PurchaseCreateApi.as_view(), name="pos-purchases"),
    path("returns", points.ReturnCreateApi.as_view(), name="pos-returns"),
    path("redemptions", redemptions.RedemptionHoldApi.as_view(), name="pos-redemptions"),
    path(
        "redemptions/<str:hold_id>/capture", redemptions.RedemptionCaptureApi.as_view(), name="pos-redemption-capture"
    ),
    path("redemptions/<str:hold_id>/void", redemptions.RedemptionVoidApi.as_view(), name="pos-redemption-void"),
    path("members/balance", points.MemberBalanceApi.as_view(), name="pos-member-balance"),
    # Retired (issue 11, D7): the loyalty number in the path landed in access logs. 410.
    re_path(r"^members/[^/]+/balance/?$", points.pos_balance_path_retired),
    path("", include(vouchers_urls.till_patterns)),  # shifts and vouchers at the till (issue 6)
    re_path(r"^.*$", points.pos_not_found),
]

urlpatterns = [
    path(
        "schema/",
        SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[AllowAny]),
        name="schema",
    ),
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api:schema",
            template_name="api/swagger_ui.html",
            authentication_classes=[],
            permission_classes=[AllowAny],
        ),
        name="docs",
    ),
    path("v1/", include(vouchers_urls.redemption_patterns)),  # till redemption authorisation, offline queue (issue 6)
    path("v1/pos/", include(pos_patterns)),
    path("v1/", include("members.api.urls")),
    path("v1/", include("compliance.api.requests")),  # the member's data-subject requests (PDPA)
    path("v1/", include(vouchers_urls.member_patterns)),
    path("v1/", include(consumer_patterns)),  # terms and complaints (issue 15)
]

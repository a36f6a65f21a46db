"""The product's URLs plus the benchmark's baseline endpoint (bench-only: served only by
``members.management.bench_settings``, never by ``loyalty.urls``).

The baseline goes through the same DRF machinery as the sign-in endpoints (the
middleware, ``MemberAuthApi``: strict JSON parsing, the refresh body's input serializer,
the JSON renderer, ``Cache-Control: no-store``) and touches no database, so the ratio of
an endpoint to it is what the endpoint's own work (services, SQL) costs.
"""

import os

from django.db import connection
from django.urls import path
from rest_framework.response import Response

from loyalty.urls import urlpatterns as product_urlpatterns
from members.api.auth_views import MemberAuthApi
from members.api.serializers_auth import RefreshInputSerializer

BASELINE_PATH = "/bench/baseline"


def _no_queries(execute, sql, params, many, context):
    raise AssertionError("the baseline endpoint must not touch the database")


class BaselineApi(MemberAuthApi):
    def post(self, request):
        with connection.execute_wrapper(_no_queries):
            data = self.input(RefreshInputSerializer)
            # The worker's pid: the bench waits until it has heard from every worker.
            return Response({"worker": os.getpid(), "fingerprint_length": len(data["device_fingerprint"])})


urlpatterns = [
    path(BASELINE_PATH.lstrip("/"), BaselineApi.as_view(), name="bench-baseline"),
    *product_urlpatterns,
]

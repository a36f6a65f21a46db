"""A server error shows a generic page with a reference, and the log line carries it."""

import logging

import pytest
from django.test import Client
from django.urls import path

from loyalty.urls import urlpatterns as project_urls


def boom(request):
    raise RuntimeError("secret internals: 4111 1111 1111 1111")


urlpatterns = [path("boom/", boom), *project_urls]
handler500 = "loyalty.errors.server_error"


@pytest.mark.urls("tests.loyalty.test_errors")
def test_500_is_generic_and_carries_the_request_id(caplog):
    client = Client(raise_request_exception=False)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = client.get("/boom/")
    assert response.status_code == 500
    body = response.content.decode()
    request_id = response["X-Request-ID"]
    assert len(request_id) == 16 and request_id in body
    assert "secret internals" not in body and "Traceback" not in body
    record = next(r for r in caplog.records if r.name == "django.request")
    assert record.request_id == request_id
    assert "4111 1111 1111 1111" not in record.exc_text and "[REDACTED]" in record.exc_text


def test_every_response_has_a_request_id(client, db):
    assert len(client.get("/healthz")["X-Request-ID"]) == 16

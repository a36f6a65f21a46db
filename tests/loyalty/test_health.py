"""GET /healthz reports the database and the broker."""

import json

import pytest

from tests.subprocess_env import PRODUCTION_ENV, child_env, run_python

pytestmark = pytest.mark.django_db


@pytest.mark.postgres
@pytest.mark.redis
def test_healthy_with_database_and_broker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_broker_down_is_degraded_but_200(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "degraded", "database": "ok", "broker": "down"}


def test_without_a_broker_tasks_run_in_process(client, settings):
    settings.REDIS_URL = ""
    assert client.get("/healthz").json()["broker"] == "in-process"


def test_only_get(client):
    assert client.post("/healthz").status_code == 405


PROBE = """
import django, json
django.setup()
from django.test import Client
response = Client().get("/healthz", HTTP_HOST="loyalty.example.com", secure=True)
print(json.dumps({"status": response.status_code, "body": response.json()}))
"""


def test_database_down_is_503():
    # A real unreachable database: a child process pointed at a closed port.
    env = child_env(
        **{
            **PRODUCTION_ENV,
            "DJANGO_SETTINGS_MODULE": "loyalty.settings",
            "DATABASE_URL": "postgres://postgres@127.0.0.1:1/loyalty",
        }
    )
    result = run_python(PROBE, env=env)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"status": 503, "body": {"status": "down", "database": "down", "broker": "in-process"}}


def test_health_is_exempt_from_the_https_redirect(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code in (200, 503)
    assert client.get("/admin/login/").status_code == 301

"""Parallel OTP guesses cannot get past the lockout (PostgreSQL, real threads)."""

import threading

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from staffauth.models import SecurityEvent
from tests.conftest import PASSWORD

GUESSERS = 8


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_wrong_codes_count_exactly_five(staff_by_role):
    # given: eight half-logged-in sessions of one user from one address
    clients = []
    for _ in range(GUESSERS):
        client = Client()
        assert client.post("/admin/login/", {"username": "cashier", "password": PASSWORD}).status_code == 302
        clients.append(client)
    barrier = threading.Barrier(GUESSERS)
    statuses = []

    def guess(client):
        try:
            barrier.wait()
            statuses.append(client.post(reverse("admin:otp_verify"), {"otp_token": "000000"}).status_code)
        finally:
            connection.close()

    # when: they all send a wrong code at once
    threads = [threading.Thread(target=guess, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then: exactly five guesses were checked; the pair is locked for the rest
    assert sorted(statuses) == [200] * 4 + [429] * 4
    assert SecurityEvent.objects.filter(kind=SecurityEvent.Kind.OTP_FAILED).count() == 5

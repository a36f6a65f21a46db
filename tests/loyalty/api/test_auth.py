"""Till authentication: signatures, the replay window, key state, the IP allow-list,
the encrypted secret and the till_create command."""

from __future__ import annotations

import io
import logging
import time
from datetime import UTC, datetime

import pytest
import time_machine
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.test import Client, override_settings

from loyalty.kernel.crypto import DecryptionFailed, decrypt_str, encrypt_str, rotate_str
from loyalty.kernel.models import Till
from loyalty.ledger.models import IdempotencyKey
from tests.loyalty.api.conftest import POS, TillClient, assert_error, encode, ledger_counts, make_till, sign

pytestmark = pytest.mark.django_db

FROZEN = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


BALANCE = f"{POS}/members/balance"


def lookup(pos, member, **kwargs):
    """The balance look-up: a signed POST with the loyalty number in the body (a read: no key)."""
    return pos.request("POST", BALANCE, {"loyalty_number": member.loyalty_number}, key=None, **kwargs)


# --- signatures ---------------------------------------------------------------------------


def test_a_correctly_signed_request_is_accepted(pos, member):
    response = lookup(pos, member)
    assert response.status_code == 200
    assert response.json() == {
        "loyalty_number": member.loyalty_number,
        "balance": {"available": 0, "held": 0, "pending": 0},
    }


def test_an_uppercase_hex_signature_is_accepted(pos, member):
    ts = str(int(time.time()))
    body = encode({"loyalty_number": member.loyalty_number})
    signature = sign(pos.secret, ts, "POST", BALANCE, body).upper()
    response = pos.client.post(
        BALANCE,
        body,
        content_type="application/json",
        headers={"X-Till-Key": pos.till.key_id, "X-Timestamp": ts, "X-Signature": signature},
    )
    assert response.status_code == 200


@pytest.mark.parametrize("missing", ["X-Till-Key", "X-Timestamp", "X-Signature"])
def test_a_missing_signing_header_is_401_with_a_challenge(pos, member, missing):
    response = lookup(pos, member, headers={missing: None})
    assert_error(response, 401, "authentication_required")
    assert response["WWW-Authenticate"] == "Till-HMAC-SHA256"


def test_an_unsigned_request_is_401(client, member):
    response = client.post(BALANCE, {"loyalty_number": member.loyalty_number}, content_type="application/json")
    assert_error(response, 401, "authentication_required")


@pytest.mark.parametrize("signature", ["0" * 64, "zz" * 32, "abc", "", "0" * 65])
def test_a_wrong_or_malformed_signature_is_401(pos, member, signature):
    response = lookup(pos, member, headers={"X-Signature": signature or None})
    assert_error(response, 401, "authentication_required" if not signature else "invalid_signature")


def test_a_signature_made_with_another_secret_is_401(pos, member, store_a):
    other = make_till(store_a, "T2")
    response = lookup(pos, member, secret=other.plain_secret)
    assert_error(response, 401, "invalid_signature")


def test_a_body_changed_after_signing_is_refused_and_writes_nothing(pos, member):
    signed = {"loyalty_number": member.loyalty_number, "receipt_number": "R1", "amount_minor": 1000}
    sent = {**signed, "amount_minor": 900000}
    response = pos.post("purchases", sent, signed_body=encode(signed))
    assert_error(response, 401, "invalid_signature")
    assert ledger_counts() == (0, 0, 0) and not IdempotencyKey.objects.exists()


def test_a_path_changed_after_signing_is_refused(pos, member, store_a):
    response = lookup(pos, member, signed_path=f"{POS}/purchases")
    assert_error(response, 401, "invalid_signature")


def test_the_query_string_is_signed(pos, member):
    body = {"loyalty_number": member.loyalty_number}
    response = pos.request("POST", BALANCE + "?x=1", body, key=None, signed_path=BALANCE)
    assert_error(response, 401, "invalid_signature")
    assert pos.request("POST", BALANCE + "?x=1", body, key=None).status_code == 200


def test_the_method_is_signed(pos, member):
    response = lookup(pos, member, signed_method="PUT")
    assert_error(response, 401, "invalid_signature")


# The till signs the request target as it sends it; Django's own view of the path is
# decoded and re-encoded its way (issue 11, "sign and verify the raw request path").
KEYS = f"{POS}/vouchers/public-key"


@pytest.mark.parametrize("server_key", ["RAW_URI", "REQUEST_URI"])
@pytest.mark.parametrize(
    "sent",
    [
        f"{POS}/vouchers/public%2Dkey",  # an unreserved character encoded: Django re-encodes it as "-"
        f"{POS}/vouchers/public%2dkey",  # lower-case hex
        f"{POS}/vouchers/%70ublic-key",  # a letter encoded
        f"{POS}/vouchers/public-key?page=%7E1&x=a+b",
    ],
)
def test_the_signature_is_over_the_raw_target_the_server_reports(pos, db, server_key, sent):
    response = pos.request("GET", sent, **{server_key: sent})
    assert response.status_code == 200, response.content


def test_an_absolute_form_target_is_signed_as_its_path_and_query(pos, db):
    sent = f"{POS}/vouchers/public%2Dkey?x=1"
    response = pos.request("GET", sent, RAW_URI=f"http://testserver{sent}")
    assert response.status_code == 200, response.content


def test_a_signature_over_django_s_form_of_another_target_is_refused(pos, db):
    """The raw target is what is signed: a signature over the path Django would rebuild
    does not vouch for the bytes actually sent."""
    sent = f"{POS}/vouchers/public%2Dkey"
    response = pos.request("GET", sent, signed_path=KEYS, RAW_URI=sent)
    assert_error(response, 401, "invalid_signature")


def test_without_a_raw_target_the_path_is_rebuilt_in_rfc_3986_normal_form(pos, db):
    """No RAW_URI/REQUEST_URI (a server that gives none): ';' and '=' may stand in a path
    unencoded (RFC 3986 pchar), where Django's own form would encode them."""
    hold = "00000000-0000-0000-0000-000000000000;v=1"
    response = pos.post(f"redemptions/{hold}/void", {})
    assert_error(response, 404, "hold_not_found")  # signed and authenticated, then no such hold
    encoded = f"{POS}/redemptions/caf%C3%A9/void"  # non-ASCII: upper-case UTF-8 escapes
    assert_error(pos.request("POST", encoded, {}), 404, "hold_not_found")


@pytest.mark.parametrize("timestamp", ["abc", "-5", "1.5", "1e9", " 1", "9" * 13])
def test_a_malformed_timestamp_is_401(pos, member, timestamp):
    assert_error(lookup(pos, member, timestamp=timestamp), 401, "invalid_timestamp")


# --- the replay window (frozen clock) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "accepted"), [(-301, False), (-300, True), (0, True), (299, True), (300, True), (301, False)]
)
def test_the_timestamp_must_be_within_300_seconds(pos, member, offset, accepted):
    with time_machine.travel(FROZEN, tick=False):
        response = lookup(pos, member, timestamp=int(FROZEN.timestamp()) + offset)
    if accepted:
        assert response.status_code == 200
    else:
        assert_error(response, 401, "timestamp_out_of_window")


def test_a_captured_request_replayed_after_the_window_is_refused(pos, member):
    start = int(FROZEN.timestamp())
    with time_machine.travel(FROZEN, tick=False):
        assert lookup(pos, member, timestamp=start).status_code == 200
    with time_machine.travel(start + 301, tick=False):
        assert_error(lookup(pos, member, timestamp=start), 401, "timestamp_out_of_window")


@override_settings(TILL_SIGNATURE_MAX_SKEW_SECONDS=60)
def test_the_window_is_a_setting(pos, member):
    with time_machine.travel(FROZEN, tick=False):
        response = lookup(pos, member, timestamp=int(FROZEN.timestamp()) - 61)
    assert_error(response, 401, "timestamp_out_of_window")


# --- till and store state -------------------------------------------------------------------


def test_an_unknown_key_is_401(pos, member):
    assert_error(lookup(pos, member, key_id="tk_nobody"), 401, "invalid_till_key")


def test_an_inactive_till_is_401_with_the_same_code_as_an_unknown_key(pos, member):
    Till.objects.filter(pk=pos.till.pk).update(active=False)
    assert_error(lookup(pos, member), 401, "invalid_till_key")


def test_a_till_of_an_inactive_store_is_401(pos, member, store_a):
    type(store_a).objects.filter(pk=store_a.pk).update(active=False)
    assert_error(lookup(pos, member), 401, "invalid_till_key")


def test_a_secret_that_cannot_be_decrypted_is_401_not_500(pos, member):
    Till.objects.filter(pk=pos.till.pk).update(secret_encrypted="not-a-fernet-token")
    assert_error(lookup(pos, member), 401, "invalid_till_key")


def test_auth_failures_are_logged_without_header_values(pos, member, caplog):
    with caplog.at_level(logging.DEBUG):
        lookup(pos, member, headers={"X-Signature": "f" * 64})
    record = next(r for r in caplog.records if getattr(r, "event", None) == "till_auth_failed")
    assert record.reason == "invalid_signature" and record.till_id == pos.till.pk
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "f" * 64 not in text and pos.secret not in text


# --- IP allow-list ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allowed", "address", "ok"),
    [
        (["10.1.2.0/24"], "10.1.2.7", True),
        (["10.1.2.0/24"], "10.1.3.7", False),
        (["192.0.2.5"], "192.0.2.5", True),
        (["192.0.2.5"], "192.0.2.6", False),
        (["2001:db8::/32"], "2001:db8::1", True),
        (["2001:db8::/32"], "10.0.0.1", False),
        (["10.0.0.0/8"], "::ffff:10.2.3.4", True),
        (["not-an-address"], "10.0.0.1", False),
        ([], "203.0.113.9", True),
    ],
)
def test_the_ip_allow_list(pos, member, allowed, address, ok):
    Till.objects.filter(pk=pos.till.pk).update(allowed_ips=allowed)
    response = lookup(pos, member, REMOTE_ADDR=address)
    if ok:
        assert response.status_code == 200
    else:
        assert_error(response, 403, "ip_not_allowed")


def test_a_forged_x_forwarded_for_does_not_pass_the_allow_list(pos, member):
    Till.objects.filter(pk=pos.till.pk).update(allowed_ips=["10.1.2.0/24"])
    response = lookup(pos, member, REMOTE_ADDR="203.0.113.9", headers={"X-Forwarded-For": "10.1.2.7"})
    assert_error(response, 403, "ip_not_allowed")


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_behind_a_trusted_proxy_the_forwarded_address_counts(pos, member):
    Till.objects.filter(pk=pos.till.pk).update(allowed_ips=["10.1.2.0/24"])
    response = lookup(pos, member, REMOTE_ADDR="172.16.0.1", headers={"X-Forwarded-For": "10.1.2.7"})
    assert response.status_code == 200


def test_an_ip_refusal_writes_nothing(pos, member):
    Till.objects.filter(pk=pos.till.pk).update(allowed_ips=["10.9.9.9"])
    body = {"loyalty_number": member.loyalty_number, "receipt_number": "R1", "amount_minor": 1000}
    assert_error(pos.post("purchases", body, REMOTE_ADDR="10.0.0.1"), 403, "ip_not_allowed")
    assert ledger_counts() == (0, 0, 0) and not IdempotencyKey.objects.exists()


# --- the encrypted secret ------------------------------------------------------------------------


def test_the_secret_is_stored_encrypted(till):
    stored = Till.objects.get(pk=till.pk).secret_encrypted
    assert till.plain_secret not in stored and decrypt_str(stored) == till.plain_secret


def test_encryption_round_trips_and_rotates(settings):
    old = settings.FIELD_ENCRYPTION_KEYS[0]
    token = encrypt_str("s3cret")
    new = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    assert decrypt_str(token) == "s3cret"  # old tokens still read during the rollout
    rotated = rotate_str(token)
    settings.FIELD_ENCRYPTION_KEYS = [new]
    assert decrypt_str(rotated) == "s3cret"
    with pytest.raises(DecryptionFailed):
        decrypt_str(token)  # no row decrypts under the dropped key alone


def test_a_till_keeps_working_across_a_key_rotation(pos, member, settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.FIELD_ENCRYPTION_KEYS]
    assert lookup(pos, member).status_code == 200


# --- till_create ---------------------------------------------------------------------------------


def test_till_create_prints_working_credentials_once(store_a, member):
    out = io.StringIO()
    call_command("till_create", "kla", "LANE-3", "--allow-ip", "127.0.0.1", stdout=out)
    lines = dict(line.split(":", 1) for line in out.getvalue().splitlines() if line.startswith(("X-Till", "Secret")))
    key_id, secret = lines["X-Till-Key"].strip(), lines["Secret"].strip()
    till = Till.objects.get(key_id=key_id)
    assert (till.store, till.code, till.active, till.allowed_ips) == (store_a, "LANE-3", True, ["127.0.0.1/32"])
    assert secret not in till.secret_encrypted and len(secret) >= 40
    response = lookup(TillClient(Client(), till, secret), member)
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["NOPE", "T9"], "No store"),
        (["KLA", "T1"], "already has a till"),
        (["KLA", "bad/code"], "till code"),
        (["KLA", "T9", "--allow-ip", "10.0.0.300"], "does not appear to be an IPv4 or IPv6"),
    ],
)
def test_till_create_refuses_bad_input(till, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("till_create", *args, stdout=io.StringIO())
    assert Till.objects.count() == 1


def test_a_failed_signature_is_a_security_event(pos, member):
    from staffauth.models import SecurityEvent

    response = pos.client.post(
        "/api/v1/pos/purchases",
        data=b"{}",
        content_type="application/json",
        HTTP_X_TILL_KEY=pos.till.key_id,
        HTTP_X_TIMESTAMP=str(int(time.time())),
        HTTP_X_SIGNATURE="0" * 64,
    )
    assert response.status_code == 401
    event = SecurityEvent.objects.get(kind=SecurityEvent.Kind.TILL_AUTH_FAILED)
    assert event.detail == {"reason": "invalid_signature", "till_id": pos.till.pk}

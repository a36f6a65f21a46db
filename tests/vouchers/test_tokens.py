"""The rotating QR token: valid only during its own time step, unforgeable, verifiable
offline with the published public key alone."""

from __future__ import annotations

import base64
import hashlib
import string
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from vouchers.services.tokens import (
    MAX_TOKEN_LENGTH,
    SIGNING_CONTEXT,
    QrTokenInvalid,
    public_keys,
    qr_token_issue,
    qr_token_verify,
    verify_offline,
)

VOUCHER = uuid.UUID("0b6f7d3e-2a51-4c8e-9f4d-6a1e2b3c4d5e")
MEMBER = uuid.UUID("7e1c2d3b-4a59-4687-b6c5-d4e3f2a1b0c9")
# 12:00:00 UTC is a multiple of 30 s (and of 60 s): the first instant of a step.
STEP_START = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
OTHER_KEY = "another-voucher-signing-key-3f9a1c5e7b2d4f6a8c0e"
OLD_KEY = "old-voucher-signing-key-8d2b6f0a4c8e1f3a5b7d9c"
TOKEN_ALPHABET = string.ascii_letters + string.digits + "-_."


def issue(at: datetime = STEP_START + timedelta(seconds=10)) -> str:
    return qr_token_issue(voucher_id=VOUCHER, member_id=MEMBER, now=at).token


def refused(token, **kwargs) -> str:
    with pytest.raises(QrTokenInvalid) as caught:
        qr_token_verify(token, **kwargs)
    return caught.value.code


def derived_public_key(secret: str) -> bytes:
    """The public key as the module documents it, derived independently here."""
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"vouchers.qr-token.ed25519").derive(
        secret.encode()
    )
    return (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


def canonical_b64url(segment: str) -> bool:
    try:
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except ValueError:
        return False
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode() == segment


# --- issue and claims ---------------------------------------------------------------------------


def test_a_token_carries_the_voucher_member_step_and_expiry():
    with time_machine.travel(STEP_START + timedelta(seconds=10), tick=False):
        issued = qr_token_issue(voucher_id=VOUCHER, member_id=MEMBER)
        claims = qr_token_verify(issued.token)
    assert issued.step == int(STEP_START.timestamp()) // 30
    assert issued.expires_at == STEP_START + timedelta(seconds=30)
    assert claims.voucher_id == VOUCHER
    assert claims.member_id == MEMBER
    assert claims.step == issued.step
    assert claims.expires_at == issued.expires_at
    assert claims.key_id == public_keys()[0]["key_id"]


def test_the_token_is_compact_ascii_and_holds_no_readable_ids():
    token = issue()
    assert len(token) <= 170
    assert set(token) <= set(TOKEN_ALPHABET)
    version, kid, payload, signature = token.split(".")
    assert (version, kid) == ("v1", public_keys()[0]["key_id"])
    assert str(VOUCHER) not in token and VOUCHER.hex not in token
    assert str(MEMBER) not in token and MEMBER.hex not in token


def test_the_step_length_comes_from_the_settings(settings):
    settings.VOUCHERS = {"qr_step_seconds": 60}
    issued = qr_token_issue(voucher_id=VOUCHER, member_id=MEMBER, now=STEP_START + timedelta(seconds=59))
    assert issued.expires_at == STEP_START + timedelta(seconds=60)
    assert qr_token_verify(issued.token, now=STEP_START + timedelta(seconds=59, microseconds=999_999))
    assert refused(issued.token, now=STEP_START + timedelta(seconds=60)) == "qr_expired"


def test_a_token_keeps_its_own_step_length_when_the_setting_changes(settings):
    token = issue()
    settings.VOUCHERS = {"qr_step_seconds": 60}
    # still the 30-second window it was signed with
    assert qr_token_verify(token, now=STEP_START + timedelta(seconds=29))
    assert refused(token, now=STEP_START + timedelta(seconds=30)) == "qr_expired"


@pytest.mark.parametrize("value", [0, -1, 3601, 1.5, "30", True])
def test_a_nonsensical_step_length_is_a_configuration_error(settings, value):
    settings.VOUCHERS = {"qr_step_seconds": value}
    with pytest.raises(ValueError, match="qr_step_seconds"):
        qr_token_issue(voucher_id=VOUCHER, member_id=MEMBER)


def test_naive_times_and_negative_grace_are_programming_errors():
    with pytest.raises(ValueError, match="timezone-aware"):
        qr_token_issue(voucher_id=VOUCHER, member_id=MEMBER, now=datetime(2026, 11, 23, 12, 0))
    with pytest.raises(ValueError, match="grace_steps"):
        qr_token_verify(issue(), now=STEP_START, grace_steps=-1)


# --- the time step ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "offset",
    [timedelta(0), timedelta(seconds=10), timedelta(seconds=29), timedelta(seconds=29, microseconds=999_999)],
)
def test_a_token_verifies_from_the_start_to_the_end_of_its_step(offset):
    token = issue()
    with time_machine.travel(STEP_START + offset, tick=False):
        assert qr_token_verify(token).voucher_id == VOUCHER


@pytest.mark.parametrize("offset", [timedelta(seconds=30), timedelta(seconds=31), timedelta(hours=1)])
def test_a_token_fails_once_its_step_is_over(offset):
    token = issue()
    with time_machine.travel(STEP_START + offset, tick=False):
        assert refused(token) == "qr_expired"


@pytest.mark.parametrize("offset", [timedelta(microseconds=-1), timedelta(seconds=-1), timedelta(seconds=-30)])
def test_a_token_is_not_valid_before_its_step(offset):
    token = issue()
    with time_machine.travel(STEP_START + offset, tick=False):
        assert refused(token) == "qr_not_yet_valid"


def test_a_screenshot_replayed_in_the_next_step_fails_and_the_new_token_works():
    # given the token on the member's screen at 12:00:10, captured in a screenshot
    screenshot = issue(STEP_START + timedelta(seconds=10))
    # when it is shown at the till at 12:00:31
    with time_machine.travel(STEP_START + timedelta(seconds=31), tick=False):
        # then it is refused, while the app's current token is accepted
        assert refused(screenshot) == "qr_expired"
        current = qr_token_issue(voucher_id=VOUCHER, member_id=MEMBER).token
        assert current != screenshot
        assert qr_token_verify(current).step == qr_token_verify(screenshot, grace_steps=1).step + 1


def test_a_grace_of_one_step_widens_the_window_by_exactly_one_step_each_side():
    token = issue()
    assert qr_token_verify(token, now=STEP_START - timedelta(seconds=30), grace_steps=1)
    assert qr_token_verify(token, now=STEP_START + timedelta(seconds=59, microseconds=999_999), grace_steps=1)
    assert refused(token, now=STEP_START + timedelta(seconds=60), grace_steps=1) == "qr_expired"
    assert refused(token, now=STEP_START - timedelta(seconds=30, microseconds=1), grace_steps=1) == "qr_not_yet_valid"


# --- tampering ----------------------------------------------------------------------------------


def expected_code_after_change(token: str, position: int, replacement: str) -> str:
    """The refusal a one-character change must give, from the documented format."""
    changed = token[:position] + replacement + token[position + 1 :]
    parts = changed.split(".")
    if len(parts) != 4 or parts[0] != "v1":
        return "qr_malformed"
    kid, payload, signature = parts[1:]
    if position < 3 + 8:  # inside the key id
        is_hex = len(kid) == 8 and set(kid) <= set("0123456789abcdef")
        return "qr_unknown_key" if is_hex else "qr_malformed"
    if not (canonical_b64url(payload) and canonical_b64url(signature)):
        return "qr_malformed"
    return "qr_signature_invalid"


def test_every_one_character_change_anywhere_is_refused_with_the_right_code():
    token = issue()
    codes_seen = set()
    for position in range(len(token)):
        for replacement in "Aa0f9_-.=Z":
            if replacement == token[position]:
                continue
            expected = expected_code_after_change(token, position, replacement)
            changed = token[:position] + replacement + token[position + 1 :]
            assert refused(changed, now=STEP_START) == expected, (position, replacement)
            codes_seen.add(expected)
    assert codes_seen == {"qr_malformed", "qr_unknown_key", "qr_signature_invalid"}


@pytest.mark.parametrize("segment", [2, 3])
def test_every_bit_flip_in_the_payload_or_signature_bytes_breaks_the_signature(segment):
    token = issue()
    parts = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(parts[segment] + "=" * (-len(parts[segment]) % 4)))
    for index in range(len(raw)):
        for bit in range(8):
            flipped = bytearray(raw)
            flipped[index] ^= 1 << bit
            parts_changed = list(parts)
            parts_changed[segment] = base64.urlsafe_b64encode(bytes(flipped)).rstrip(b"=").decode()
            assert refused(".".join(parts_changed), now=STEP_START) == "qr_signature_invalid", (index, bit)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.data())
def test_random_changes_to_a_token_never_verify(data):
    token = issue()
    position = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    replacement = data.draw(st.text(alphabet=TOKEN_ALPHABET + "=+/ \x00é", min_size=0, max_size=3))
    changed = token[:position] + replacement + token[position + 1 :]
    if changed == token:
        return
    with pytest.raises(QrTokenInvalid) as caught:
        qr_token_verify(changed, now=STEP_START)
    assert caught.value.code in {"qr_malformed", "qr_unknown_key", "qr_signature_invalid"}


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=64), st.none(), st.integers()))
def test_any_input_is_refused_with_a_known_code_never_an_unexpected_error(value):
    assert refused(value, now=STEP_START) in {"qr_malformed", "qr_unknown_key", "qr_signature_invalid"}


def test_oversized_input_is_refused_before_parsing():
    token = issue()
    assert refused(token + "A" * (MAX_TOKEN_LENGTH - len(token) + 1), now=STEP_START) == "qr_malformed"
    assert refused("v1." + "A" * 10_000_000, now=STEP_START) == "qr_malformed"


def test_a_token_signed_by_another_key_is_refused(settings):
    # given a token signed with a key the server does not hold
    settings.VOUCHER_SIGNING_KEY = OTHER_KEY
    foreign = issue()
    settings.VOUCHER_SIGNING_KEY = OLD_KEY
    # then its key id is unknown
    assert refused(foreign, now=STEP_START) == "qr_unknown_key"
    # and relabelled with the server's key id, its signature does not verify
    relabelled = ".".join(["v1", public_keys()[0]["key_id"], *foreign.split(".")[2:]])
    assert refused(relabelled, now=STEP_START) == "qr_signature_invalid"


def test_a_signature_without_the_domain_context_does_not_verify(settings):
    # given the server's own key signing the token text without the context prefix
    settings.VOUCHER_SIGNING_KEY = OLD_KEY
    token = issue()
    signed_part = token.rsplit(".", 1)[0]
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"vouchers.qr-token.ed25519").derive(
        OLD_KEY.encode()
    )
    bare = Ed25519PrivateKey.from_private_bytes(seed).sign(signed_part.encode())
    forged = f"{signed_part}.{base64.urlsafe_b64encode(bare).rstrip(b'=').decode()}"
    assert refused(forged, now=STEP_START) == "qr_signature_invalid"
    assert qr_token_verify(token, now=STEP_START)


# --- key rotation -------------------------------------------------------------------------------


def test_a_token_signed_with_a_previous_key_verifies_while_that_key_is_listed(settings):
    # given a token signed before a rotation
    settings.VOUCHER_SIGNING_KEY = OLD_KEY
    settings.VOUCHER_SIGNING_KEYS_PREVIOUS = []
    old_token = issue()
    old_kid = public_keys()[0]["key_id"]
    # when the key rotates and the old one is kept for verification
    settings.VOUCHER_SIGNING_KEY = OTHER_KEY
    settings.VOUCHER_SIGNING_KEYS_PREVIOUS = [OLD_KEY]
    # then the old token verifies, new tokens use the new key, both keys are published
    assert qr_token_verify(old_token, now=STEP_START).key_id == old_kid
    new_token = issue()
    assert qr_token_verify(new_token, now=STEP_START).key_id != old_kid
    assert [k["key_id"] for k in public_keys()] == [new_token.split(".")[1], old_kid]
    # and once the old key is dropped, its tokens are refused
    settings.VOUCHER_SIGNING_KEYS_PREVIOUS = []
    assert refused(old_token, now=STEP_START) == "qr_unknown_key"
    assert [k["key_id"] for k in public_keys()] == [new_token.split(".")[1]]


# --- published keys and offline verification ----------------------------------------------------


def test_the_published_key_is_the_documented_derivation(settings):
    settings.VOUCHER_SIGNING_KEY = OLD_KEY
    settings.VOUCHER_SIGNING_KEYS_PREVIOUS = ["", OTHER_KEY, OLD_KEY, OTHER_KEY]
    published = public_keys()
    assert [set(k) for k in published] == [{"key_id", "algorithm", "public_key", "pem"}] * 2
    for entry, secret in zip(published, [OLD_KEY, OTHER_KEY], strict=True):
        raw = base64.b64decode(entry["public_key"])
        assert raw == derived_public_key(secret)
        assert entry["algorithm"] == "Ed25519"
        assert entry["key_id"] == hashlib.sha256(raw).hexdigest()[:8]
        from_pem = serialization.load_pem_public_key(entry["pem"].encode())
        assert isinstance(from_pem, Ed25519PublicKey)
        assert from_pem.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) == raw
        for value in entry.values():
            assert secret not in value


def test_offline_verification_needs_only_the_public_key(settings):
    # given a token and the published public key
    token = issue()
    public = base64.b64decode(public_keys()[0]["public_key"])
    # when the till has no secret at all (a different key configured here)
    settings.VOUCHER_SIGNING_KEY = OTHER_KEY
    settings.VOUCHER_SIGNING_KEYS_PREVIOUS = []
    settings.VOUCHERS = {"qr_step_seconds": 600}
    # then the public key verifies the token, with the same time rules
    claims = verify_offline(token, public, STEP_START + timedelta(seconds=29))
    assert (claims.voucher_id, claims.member_id) == (VOUCHER, MEMBER)
    for now, code in [
        (STEP_START + timedelta(seconds=30), "qr_expired"),
        (STEP_START - timedelta(seconds=1), "qr_not_yet_valid"),
    ]:
        with pytest.raises(QrTokenInvalid) as caught:
            verify_offline(token, public, now)
        assert caught.value.code == code
    # and another public key is not accepted
    with pytest.raises(QrTokenInvalid) as caught:
        verify_offline(token, derived_public_key(OTHER_KEY), STEP_START)
    assert caught.value.code == "qr_unknown_key"


def test_a_third_party_can_verify_from_the_documented_format_alone():
    # given only the token, the published key and the format description
    token = issue()
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_keys()[0]["public_key"]))
    signed_part, signature = token.rsplit(".", 1)
    # then the signature verifies over the context and the text before it
    public.verify(base64.urlsafe_b64decode(signature + "=="), SIGNING_CONTEXT + signed_part.encode())
    payload = base64.urlsafe_b64decode(signed_part.split(".")[2] + "===")
    assert payload[0] == 1
    assert uuid.UUID(bytes=payload[1:17]) == VOUCHER
    assert uuid.UUID(bytes=payload[17:33]) == MEMBER
    step, expires = int.from_bytes(payload[33:41], "big"), int.from_bytes(payload[41:49], "big")
    assert expires == (step + 1) * 30 == int(STEP_START.timestamp()) + 30


def test_a_refusal_never_contains_the_token():
    token = issue()
    for now in (STEP_START + timedelta(minutes=5), STEP_START - timedelta(minutes=5)):
        with pytest.raises(QrTokenInvalid) as caught:
            qr_token_verify(token, now=now)
        for part in token.split(".")[1:]:
            assert part not in str(caught.value)
            assert part not in repr(caught.value)

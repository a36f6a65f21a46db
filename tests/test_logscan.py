"""The log scan (``tests/logscan.py``): it finds what it should, masks what it prints,
collects the run's sensitive values by itself and captures records no handler sees."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import textwrap

import pytest

from members.services.membership import member_create, member_pii_set
from members.services.otp import otp_request
from members.services.sessions import session_start
from tests import logscan
from tests.logscan import STATE, Hit, LogScan, Origin, find, mask
from tests.subprocess_env import ROOT


def _active() -> None:
    if logging.Logger.callHandlers is not logscan._call_handlers:
        pytest.skip("the log scan plugin is not active (-p no:tests.logscan)")


# --- finding and masking ----------------------------------------------------------------


def test_find_is_case_insensitive_and_ignores_values_under_six_characters():
    texts = ["mail sent to SITI.N@EXAMPLE.COM today", "user abcde logged in"]

    hits = find(texts, ["Siti.N@example.com", "abcde"])

    assert hits == [(texts[0], "siti.n@example.com")]


def test_a_code_counts_only_standing_alone():
    texts = ["challenge 3fa424242b created", "guess 4242421 refused", "code=424242.", "(424242)"]

    hits = find(texts, ["424242"])

    assert [text for text, _ in hits] == ["code=424242.", "(424242)"]


def test_a_code_inside_a_larger_number_is_no_hit():
    texts = [
        "expiry older than 2026-11-23 17:50:06.424242+00:00",  # a timestamp's fraction
        "took 3.424242 s",
        "424242:15",
        "1,424242",
        "your code is 424242, thanks",
        "code 424242: use it",
    ]

    hits = find(texts, ["424242"])

    assert [text for text, _ in hits] == ["your code is 424242, thanks", "code 424242: use it"]


def test_a_long_value_counts_anywhere_in_a_text():
    assert find(["to:60123456789x"], ["60123456789"]) == [("to:60123456789x", "60123456789")]


def test_mask_never_shows_the_whole_value():
    for value in ["+60123456789", "424242", "Siti.Nurhaliza@example.com", "eyJzIjoiYWJjIn0:1tX:abcdef"]:
        masked = mask(value)
        assert value not in masked
        assert masked.startswith(value[0])
    assert mask("+60123456789") == "+6…89 (12 chars)"
    assert mask("424242") == "4***** (6 chars)"


def test_nothing_found_is_no_hit():
    scan = LogScan()
    scan.value_add("email address", "siti@example.com")
    scan.capture(
        logging.LogRecord("x", logging.INFO, __file__, 1, "mail sent to member %s", ("m-1",), None), emitted=True
    )

    assert scan.records == 1
    assert scan.hits() == []


def test_one_value_found_inside_another_is_reported_once():
    scan = LogScan()
    scan.phone_add("+60123456789")  # also adds the digits alone
    scan.capture(logging.LogRecord("x", logging.INFO, __file__, 1, "texted %s", ("+60123456789",), None), emitted=True)

    (hit,) = scan.hits()
    assert (hit.kind, hit.masked) == ("phone number", "+6…89 (12 chars)")
    assert hit.context == "'texted <+6…89 (12 chars)>'"


def test_sql_from_a_debug_cursor_is_a_note_and_a_request_extra_keeps_only_its_path(rf):
    scan = LogScan()
    scan.value_add("access token", "eyJhbGciOi.secret-token-value")
    sql = logging.LogRecord("django.db.backends", logging.DEBUG, __file__, 1, "INSERT ... %s", ("x",), None)
    scan.capture(sql, emitted=False)
    request = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Unauthorized: /api/v1/me", (), None)
    request.request = rf.get("/api/v1/me", {"access_token": "eyJhbGciOi.secret-token-value"})
    scan.capture(request, emitted=True)
    loud = logging.LogRecord("django.db.backends", logging.WARNING, __file__, 1, "slow: %s", ("x",), None)

    assert "Unauthorized: /api/v1/me\nrequest=GET /api/v1/me" in scan.texts
    assert scan.hits() == []
    assert Hit("access token", "e…", Origin("django.db.backends", "DEBUG", "t", emitted=False)).is_sql
    assert not Hit("access token", "e…", Origin(loud.name, "WARNING", "t", emitted=True)).is_sql


# --- capturing --------------------------------------------------------------------------


def test_capture_keeps_the_message_the_exception_and_the_extras():
    scan = LogScan()
    try:
        raise ValueError("bad value in the traceback")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("members.x", logging.ERROR, __file__, 1, "failed for %s", ("m-1",), exc_info)
    record.member_email = "extra@example.com"

    scan.capture(record, emitted=False)
    scan.capture(record, emitted=True)

    ((text, origin),) = scan.texts.items()
    assert "failed for m-1" in text
    assert "bad value in the traceback" in text
    assert "member_email='extra@example.com'" in text
    assert (origin.logger, origin.level, origin.count, origin.emitted) == ("members.x", "ERROR", 2, True)


def test_a_quiet_logger_below_its_level_is_captured_and_its_handlers_see_nothing_new():
    _active()
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append
    logger = logging.getLogger("tests.logscan.quiet")
    logger.propagate, logger.handlers = False, [handler]
    logger.setLevel(logging.ERROR)
    STATE.levels_lower()
    try:
        logger.debug("quiet-sentinel %s", "d-17")
        logger.error("quiet-sentinel %s", "e-17")
    finally:
        logger.handlers, logger.propagate = [], True
        logger.setLevel(logging.NOTSET)

    assert [record.getMessage() for record in seen] == ["quiet-sentinel e-17"]
    assert STATE.texts["quiet-sentinel d-17"].emitted is False
    assert STATE.texts["quiet-sentinel d-17"].nodeid.endswith(
        "test_a_quiet_logger_below_its_level_is_captured_and_its_handlers_see_nothing_new"
    )
    assert STATE.texts["quiet-sentinel e-17"].emitted is True


def test_caplog_sees_what_the_configured_levels_let_through(caplog):
    _active()
    logger = logging.getLogger("tests.logscan.loud")

    logger.info("loud-sentinel info")  # the test settings' root level is WARNING
    logger.warning("loud-sentinel warning")
    caplog.set_level(logging.DEBUG, logger="tests.logscan.loud")
    logger.debug("loud-sentinel debug")

    assert [r.getMessage() for r in caplog.records] == ["loud-sentinel warning", "loud-sentinel debug"]
    assert "loud-sentinel info" in STATE.texts


# --- collecting -------------------------------------------------------------------------


@pytest.mark.django_db
def test_member_services_feed_their_personal_data_to_the_scan():
    _active()
    member = member_create(
        name="Wan Ahmad Logscan", phone="012-987 6543", email="Wan.Ahmad@Logscan.EXAMPLE", address="7 Jalan Logscan"
    )
    member_pii_set(member=member, email="second.address@logscan.example")

    for value in [
        "+60129876543",
        "60129876543",
        "wan.ahmad@logscan.example",
        "wan ahmad logscan",
        "7 jalan logscan",
        "second.address@logscan.example",
    ]:
        assert value in STATE.values, value
    assert STATE.values["+60129876543"] == "phone number"


@pytest.mark.django_db
def test_codes_sent_and_tokens_issued_are_collected(django_capture_on_commit_callbacks):
    _active()
    from loyalty.notifications import LocmemSmsBackend

    member = member_create(phone="+60 13-246 8024")
    LocmemSmsBackend.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        otp_request(phone="+60132468024", purpose="login")
    tokens = session_start(member=member, channel="app", device_fingerprint="logscan-device-1")

    (sms,) = LocmemSmsBackend.outbox
    code = next(word for word in sms["text"].replace(".", " ").split() if word.isdigit())
    LocmemSmsBackend.outbox.clear()
    assert STATE.values[code] == "OTP code"
    assert STATE.values[tokens.access_token.lower()] == "access token"
    assert STATE.values[tokens.refresh_token.lower()] == "refresh token"


# --- the whole plugin, in a run of its own ----------------------------------------------

PLANTED = """
    import logging

    from loyalty.notifications import LocmemSmsBackend
    from members.services.pii import phone_normalise

    quiet = logging.getLogger("planted.quiet")
    quiet.propagate = False
    quiet.setLevel(logging.CRITICAL)


    def test_plants():
        phone = phone_normalise("012-555 7788")
        LocmemSmsBackend().send(to=phone, text="Your loyalty code is 580214. It expires in 5 minutes.")
        logging.getLogger("planted.loud").warning("texted %s", phone)
        try:
            raise ValueError("bad code 580214")
        except ValueError:
            quiet.debug("guess failed", exc_info=True)


    def test_clean():
        phone_normalise("012-555 7799")
        logging.getLogger("planted.loud").warning("nothing to see")
"""


def _run(tmp_path, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_planted.py").write_text(textwrap.dedent(PLANTED))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.logscan", "-p", "no:cacheprovider", "--ds=tests.settings", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_planted_value_fails_the_run_and_is_reported_masked(tmp_path):
    run = _run(tmp_path, "test_planted.py")

    assert run.returncode == 1, run.stdout + run.stderr
    out = run.stdout
    assert "2 passed" in out
    assert "phone number +6…88 (12 chars) in a WARNING record of logger 'planted.loud'" in out
    assert "first in test_planted.py::test_plants)" in out
    assert "OTP code 5***** (6 chars) in a DEBUG record of logger 'planted.quiet'" in out
    assert "below the configured level" in out
    assert "+60125557788" not in out
    assert "580214" not in out
    assert re.search(r"log scan: [1-9]\d* records, [3-9]\d* sensitive values, 2 hits", out), out


def test_a_value_equal_to_a_route_word_is_not_a_secret():
    """A fuzzed member name such as "Redeem" is logged with every request to
    /api/v1/pos/vouchers/redeem, whoever it belongs to: the scan does not count it, and
    still counts a name that is no route's."""
    scan = logscan.LogScan()
    scan.value_add("name", "Redeem")
    scan.value_add("name", "Rosalind")
    assert "redeem" in logscan._route_words()
    assert scan.values == {"rosalind": "name"}

"""Issue 5: the logs of the whole test run hold none of the run's personal data, codes,
tokens or secrets.

For the session this plugin

- captures every log record of every logger down to DEBUG, whatever its level or
  ``propagate`` (``settings.LOGGING`` raises ``axes`` and ``django.db.backends``, and the
  test settings the root, to WARNING or above). Loggers are lowered to level 1 (below
  DEBUG, so a level a test sets with ``caplog`` is told apart from ours) and
  ``Logger.callHandlers`` is wrapped: every record is captured where it is made (its
  message, exception text, stack and ``extra`` values), and handed on to the handlers
  only if the levels as configured let it through, so the console, ``caplog`` and
  pytest's reports see what they would have seen without this plugin;
- collects the sensitive values the run produces, without tests registering them:
  phones, emails, names and addresses given to the member services and normalisers,
  OTP codes (as texted, and as guessed), email link tokens, access and refresh tokens,
  passwords, staff TOTP keys and till secrets (wrappers installed at session start, see
  ``_install_collectors``);
- at the end scans every captured text for every value (case-insensitive; a value of
  digits only, like a code, must stand alone), prints
  ``log scan: N records, M sensitive values, K hits`` and, for each hit, the kind of
  value (masked), the logger and the test; a hit fails the run.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pytest

MIN_LENGTH = 6  # shorter values would match by chance
SHORT_DIGITS = 8  # a value of at most this many digits (a code) must stand alone to match
LOWERED = 1  # the level loggers are lowered to: below DEBUG, unlike any level a test sets
MAX_REPORTED = int(os.environ.get("LOGSCAN_MAX_REPORTED", "50"))

_FORMATTER = logging.Formatter()
_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
_ALNUM = re.compile(r"[0-9a-z]")
_SMS_CODE = re.compile(r"\bcode\b\D{0,20}?(\d{4,10})\b", re.IGNORECASE)
_URL = re.compile(r"https?://\S+")
_URL_PART = re.compile(r"[/?#&=]")
_TOKEN = re.compile(r"(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9_\-]+")  # not a host or a path's words


def mask(value: str) -> str:
    """Enough of ``value`` to recognise it in the test's data, never all of it."""
    if len(value) >= 10:
        return f"{value[:2]}…{value[-2:]} ({len(value)} chars)"
    return f"{value[:1]}{'*' * (len(value) - 1)} ({len(value)} chars)"


def _stands_alone(text: str, start: int, value: str) -> bool:
    if not (value.isdigit() and len(value) <= SHORT_DIGITS):
        return True
    end = start + len(value)
    before = text[start - 1] if start else ""
    after = text[end] if end < len(text) else ""
    if _ALNUM.match(before) or _ALNUM.match(after):
        return False
    # Part of a larger number: the fraction of a timestamp ("17:50:06.123456+00:00"), a
    # time, a decimal or a grouped figure ("1,234,567") is no code.
    joined_before = before in ".:," and start >= 2 and text[start - 2].isdigit()
    joined_after = after in ".:," and end + 1 < len(text) and text[end + 1].isdigit()
    return not (joined_before or joined_after)


def find(texts: Iterable[str], values: Iterable[str]) -> list[tuple[str, str]]:
    """Every (text, value) where the value occurs in the text, case-insensitively.

    One pass over each text: candidates come from a table keyed by the values' first
    ``MIN_LENGTH`` characters (shorter values are ignored)."""
    by_prefix: dict[str, list[str]] = defaultdict(list)
    for value in {v.lower() for v in values if len(v) >= MIN_LENGTH}:
        by_prefix[value[:MIN_LENGTH]].append(value)
    hits = []
    if not by_prefix:
        return hits
    for text in texts:
        low, found = text.lower(), set()
        for i in range(len(low) - MIN_LENGTH + 1):
            candidates = by_prefix.get(low[i : i + MIN_LENGTH])
            if candidates:
                for value in candidates:
                    if value not in found and low.startswith(value, i) and _stands_alone(low, i, value):
                        found.add(value)
                        hits.append((text, value))
    return hits


def _context(text: str, value: str, values: list[str], width: int = 80) -> str:
    """Some text around ``value``'s first occurrence, every found value masked."""
    low = text.lower()
    start = low.find(value)
    piece = text[max(0, start - width) : start + len(value) + width]
    for found in sorted(values, key=len, reverse=True):
        piece = re.sub(re.escape(found), lambda _m, f=found: f"<{mask(f)}>", piece, flags=re.IGNORECASE)
    return repr(piece)


@dataclass
class Origin:
    """Where a captured text first came from, and how often it was logged."""

    logger: str
    level: str
    nodeid: str
    emitted: bool  # the configured levels let it through (else only this plugin saw it)
    count: int = 1


@dataclass(frozen=True)
class Hit:
    kind: str
    masked: str
    origin: Origin
    context: str = ""

    def line(self) -> str:
        where = "" if self.origin.emitted else "; below the configured level, so only the scan saw it"
        return (
            f"{self.kind} {self.masked} in a {self.origin.level} record of logger {self.origin.logger!r} "
            f"({self.origin.count}x, first in {self.origin.nodeid}{where}): {self.context}"
        )

    @property
    def is_sql(self) -> bool:
        """SQL logged by a debug cursor: its parameters are what the database holds (the
        encryption tests' subject), and LOGGING pins ``django.db.backends`` to WARNING."""
        return self.origin.logger.startswith("django.db.backends") and not self.origin.emitted


@functools.cache
def _route_words() -> frozenset[str]:
    """The words of the product's own URL routes (``redeem``, ``vouchers``...): a value
    equal to one is logged with every request to that route, whoever it belongs to."""
    from django.urls import get_resolver

    words: set[str] = set()

    def walk(patterns) -> None:
        for pattern in patterns:
            words.update(w.lower() for w in re.findall(r"[A-Za-z]+", str(pattern.pattern)))
            walk(getattr(pattern, "url_patterns", ()))

    walk(get_resolver().url_patterns)
    return frozenset(words)


class LogScan:
    """The captured texts and the sensitive values of one run."""

    def __init__(self) -> None:
        self.records = 0
        self.texts: dict[str, Origin] = {}
        self.values: dict[str, str] = {}  # lower-cased value -> kind
        self.nodeid = "<session start>"
        self.original_levels: dict[str, int] = {}
        self._lock = threading.Lock()

    # --- values ---------------------------------------------------------------------

    def value_add(self, kind: str, value) -> None:
        if not isinstance(value, str):
            return
        value = value.strip()
        if value.lower() in _route_words():
            return  # a fuzzed name such as "Redeem" cannot be told from the route /vouchers/redeem
        if len(value) >= MIN_LENGTH and (kind != "OTP code" or value.isdigit()):
            self.values.setdefault(value.lower(), kind)

    def phone_add(self, value) -> None:
        if not isinstance(value, str):
            return
        self.value_add("phone number", value)
        self.value_add("phone number", re.sub(r"\D", "", value))

    def mail_add(self, message) -> None:
        for address in getattr(message, "to", ()) or ():
            self.value_add("email address", address)
        bodies = [getattr(message, "body", "") or ""]
        bodies += [content for content, _ in getattr(message, "alternatives", ()) or () if isinstance(content, str)]
        for body in bodies:
            for url in _URL.findall(body):
                for part in _URL_PART.split(url):
                    if len(part) >= 16 and _TOKEN.fullmatch(part):
                        self.value_add("email link token", part)

    def sms_add(self, *, to, text) -> None:
        self.phone_add(to)
        for code in _SMS_CODE.findall(text or ""):
            self.value_add("OTP code", code)

    # --- records --------------------------------------------------------------------

    def capture(self, record: logging.LogRecord, *, emitted: bool) -> None:
        try:
            parts = [record.getMessage()]
        except Exception:  # a broken format string: keep what there is
            parts = [str(record.msg), repr(record.args)]
        if record.exc_text:
            parts.append(record.exc_text)
        elif record.exc_info and record.exc_info[0] is not None:
            parts.append(_FORMATTER.formatException(record.exc_info))
        if record.stack_info:
            parts.append(record.stack_info)
        for key, value in record.__dict__.items():
            if key == "request" and hasattr(value, "path") and hasattr(value, "META"):
                # Django's request extra: its repr quotes the query string the client chose
                # (a test sends a token there on purpose, to see it refused); keep the path.
                parts.append(f"request={value.method} {value.path}")
            elif key not in _RECORD_ATTRS:
                try:
                    parts.append(f"{key}={value!r}")
                except Exception:  # noqa: S112 - an extra that cannot be shown cannot leak here
                    continue
        text = "\n".join(parts)
        with self._lock:
            self.records += 1
            origin = self.texts.get(text)
            if origin is None:
                self.texts[text] = Origin(record.name, record.levelname, self.nodeid, emitted)
            else:
                origin.count += 1
                origin.emitted = origin.emitted or emitted

    def hits(self) -> list[Hit]:
        """One per (text, value) found, leaving out a value found inside another one
        found in the same text (a phone's digits inside its E.164 form)."""
        found: dict[str, list[str]] = defaultdict(list)
        for text, value in find(list(self.texts), list(self.values)):
            found[text].append(value)
        return [
            Hit(self.values[value], mask(value), self.texts[text], _context(text, value, values))
            for text, values in found.items()
            for value in values
            if not any(value != other and value in other for other in values)
        ]

    # --- levels ---------------------------------------------------------------------

    def levels_lower(self) -> None:
        """Lower every logger with a level of its own to LOWERED, remembering its level."""
        manager = logging.root.manager
        for logger in [logging.root, *list(manager.loggerDict.values())]:
            if isinstance(logger, logging.Logger) and logger.level not in (logging.NOTSET, LOWERED):
                self.original_levels[logger.name] = logger.level
                logger.setLevel(LOWERED)

    def threshold(self, logger: logging.Logger | None) -> int:
        """The level ``logger`` would have had without this plugin (a level a test set since stands)."""
        while logger is not None:
            level = logger.level
            if level == LOWERED:
                level = self.original_levels.get(logger.name, logging.NOTSET)
            if level:
                return level
            logger = logger.parent
        return logging.NOTSET


STATE = LogScan()
_original_call_handlers = logging.Logger.callHandlers


def _call_handlers(self: logging.Logger, record: logging.LogRecord) -> None:
    emitted = record.levelno >= STATE.threshold(self)
    STATE.capture(record, emitted=emitted)
    if emitted:
        _original_call_handlers(self, record)


# --- collectors -------------------------------------------------------------------------


def _wrap_everywhere(wrappers: dict[Callable, Callable]) -> None:
    """Replace each function by its wrapper in every module that holds it (``from x
    import f`` made copies of the reference before the session started)."""
    by_id = {id(original): wrapper for original, wrapper in wrappers.items()}
    for module in list(sys.modules.values()):
        try:
            namespace = vars(module)
        except TypeError:
            continue
        if not isinstance(namespace, dict):
            continue
        for name, value in list(namespace.items()):
            wrapper = by_id.get(id(value))
            if wrapper is not None and value is not wrapper:
                namespace[name] = wrapper


def _after(original: Callable, record: Callable) -> Callable:
    """``original``, calling ``record(result, *args, **kwargs)`` after each successful call."""

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        record(result, *args, **kwargs)
        return result

    wrapper.__logscan__ = True
    return wrapper


def _before(original: Callable, record: Callable) -> Callable:
    """``original``, calling ``record(*args, **kwargs)`` before each call."""

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        record(*args, **kwargs)
        return original(*args, **kwargs)

    wrapper.__logscan__ = True
    return wrapper


def _member_pii(_member, *_args, **kwargs) -> None:
    # After the call: what was refused (a test's oversized or malformed input) is no one's data.
    for field in ("name", "address"):
        STATE.value_add(field, kwargs.get(field))
    STATE.phone_add(kwargs.get("phone"))
    STATE.value_add("email address", kwargs.get("email"))


def _install_collectors() -> list[str]:
    """Wrap what hands out sensitive values; returns what could not be wrapped."""
    from django.apps import apps

    if not apps.ready:
        return ["all (Django is not set up)"]
    missing, functions = [], {}

    def function(module_name: str, name: str, record: Callable, *, after: bool) -> None:
        try:
            module = sys.modules.get(module_name) or __import__(module_name, fromlist=[name])
        except ImportError:
            module = None
        original = getattr(module, name, None)
        if original is None:
            missing.append(f"{module_name}.{name}")
        elif not getattr(original, "__logscan__", False):
            functions[original] = (_after if after else _before)(original, record)

    def method(cls, name: str, record: Callable) -> None:
        original = cls.__dict__.get(name)
        if original is None:
            missing.append(f"{cls.__module__}.{cls.__name__}.{name}")
        elif not getattr(original, "__logscan__", False):
            setattr(cls, name, _before(original, record))

    # Members' personal data, as given and as normalised.
    function("members.services.membership", "member_create", _member_pii, after=True)
    function("members.services.membership", "member_pii_set", _member_pii, after=True)
    function("members.services.pii", "phone_normalise", lambda result, *a, **k: STATE.phone_add(result), after=True)
    function(
        "members.services.pii",
        "email_normalise",
        lambda result, *a, **k: STATE.value_add("email address", result),
        after=True,
    )

    def text_normalised(result, field, *_args, **_kwargs):
        if field in ("name", "address"):
            STATE.value_add(field, result)

    function("members.services.pii", "text_normalise", text_normalised, after=True)

    # OTP codes, as texted (not guesses: tests send all sorts as codes).
    from loyalty.notifications import ConsoleSmsBackend, LocmemSmsBackend

    for backend in (LocmemSmsBackend, ConsoleSmsBackend):
        method(backend, "send", lambda _self, *, to, text: STATE.sms_add(to=to, text=text))
    function(
        "members.services.otp", "_sms_text", lambda code, *_a, **_k: STATE.value_add("OTP code", code), after=False
    )

    # Email: addresses and link tokens (what lands in mail.outbox).
    from django.core.mail.backends.locmem import EmailBackend

    method(EmailBackend, "send_messages", lambda _self, messages: [STATE.mail_add(m) for m in messages or ()])

    # Access and refresh tokens, however they are issued.
    from members.services.sessions import SessionTokens

    def tokens_issued(tokens, *_args, **_kwargs):
        STATE.value_add("access token", tokens.access_token)
        STATE.value_add("refresh token", tokens.refresh_token)

    init = SessionTokens.__dict__["__init__"]
    if not getattr(init, "__logscan__", False):
        SessionTokens.__init__ = _after(init, lambda _none, tokens, *a, **k: tokens_issued(tokens))

    # Passwords (staff and members), staff TOTP keys, till secrets.
    function(
        "django.contrib.auth.hashers",
        "make_password",
        lambda *a, **k: STATE.value_add("password", a[0] if a else k.get("password")),
        after=False,
    )
    function(
        "loyalty.api.auth", "till_create", lambda result, *a, **k: STATE.value_add("till secret", result[1]), after=True
    )

    from django.db.models.signals import post_save
    from django_otp.plugins.otp_totp.models import TOTPDevice

    def totp_saved(sender, instance, **kwargs):
        STATE.value_add("TOTP key", instance.key)

    post_save.connect(totp_saved, sender=TOTPDevice, weak=False, dispatch_uid="tests.logscan.totp")

    _wrap_everywhere(functions)
    return missing


# --- hooks ------------------------------------------------------------------------------


def pytest_sessionstart(session):
    try:
        missing = _install_collectors()
    except ImportError as exc:
        missing = [f"all ({exc})"]
    session.config.stash[_missing_key] = missing
    STATE.levels_lower()
    logging.Logger.callHandlers = _call_handlers


_missing_key = pytest.StashKey[list]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    # Loggers created or given a level since (by imports, by tests) are lowered too.
    STATE.levels_lower()
    STATE.nodeid = item.nodeid
    try:
        return (yield)
    finally:
        STATE.nodeid = f"<after {item.nodeid}>"


def pytest_sessionfinish(session, exitstatus):
    logging.Logger.callHandlers = _original_call_handlers
    started = time.perf_counter()
    hits = STATE.hits()
    sql = [hit for hit in hits if hit.is_sql]
    hits = [hit for hit in hits if not hit.is_sql]
    lines = [
        f"log scan: {STATE.records} records, {len(STATE.values)} sensitive values, {len(hits)} hits"
        f" ({len(STATE.texts)} distinct texts scanned in {time.perf_counter() - started:.1f} s"
        f"{f'; {len(sql)} more in debug-cursor SQL, not failing' if sql else ''})"
    ]
    missing = session.config.stash.get(_missing_key, [])
    if missing:
        lines.append(f"log scan: could not watch {', '.join(missing)}")
    for hit in sql[:MAX_REPORTED]:
        lines.append(f"log scan: note, SQL parameter: {hit.line()}")
    grouped: dict[str, int] = {}
    for hit in hits:
        grouped[hit.line()] = grouped.get(hit.line(), 0) + 1
    for line, count in list(grouped.items())[:MAX_REPORTED]:
        lines.append(f"log scan: leak: {line}" + (f" [{count} texts]" if count > 1 else ""))
    if len(grouped) > MAX_REPORTED:
        lines.append(f"log scan: ... and {len(grouped) - MAX_REPORTED} more")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        if reporter._tw.width_of_current_line:  # after -q's progress dots
            reporter.write("\n")
        reporter.write_sep("-", "log scan", red=bool(hits), green=not hits)
    for line in lines:
        if reporter is not None:
            reporter.write_line(line, red=bool(hits), bold=bool(hits))
        else:
            print(line, file=sys.stderr)  # noqa: T201
    if hits and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED

"""A logging filter that keeps card numbers and line breaks out of log lines."""

from __future__ import annotations

import logging
import re

from loyalty.pan import PAN_CANDIDATE, looks_like_pan

_CRLF = re.compile(r"[\r\n]")


def _redact(text: str) -> str:
    def replace(match: re.Match) -> str:
        return "[REDACTED]" if looks_like_pan(match.group(0)) else match.group(0)

    text = PAN_CANDIDATE.sub(replace, text)
    # CR/LF from user input must not forge extra log lines (ASVS V7.3.1).
    return _CRLF.sub(lambda m: "\\r" if m.group(0) == "\r" else "\\n", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            return True
        redacted = _redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True

"""A logging filter that keeps card numbers and line breaks out of log lines."""

from __future__ import annotations

import logging
import re

from loyalty.kernel.pan import redact_pans
from staffauth.context import current_request_id

_CRLF = re.compile(r"[\r\n]")
_FORMATTER = logging.Formatter()

# Names of restricted fields (from compliance.register, installed by the compliance app at
# start-up: this module sits in a lower layer). A record attribute (``extra=``) so named is
# replaced by REDACTED before any handler formats it.
RESTRICTED_ATTRIBUTES: frozenset[str] = frozenset()
REDACTED = "[redacted]"


def _redact(text: str) -> str:
    # CR/LF from user input must not forge extra log lines (ASVS V7.3.1).
    return _CRLF.sub(lambda m: "\\r" if m.group(0) == "\r" else "\\n", redact_pans(text))


class RedactingFilter(logging.Filter):
    """Redacts card numbers, escapes line breaks and stamps the request id."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        for name in RESTRICTED_ATTRIBUTES.intersection(record.__dict__):
            setattr(record, name, REDACTED)
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            return True
        redacted = _redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # Exception messages can quote input too; the traceback keeps its lines.
            record.exc_text = redact_pans(_FORMATTER.formatException(record.exc_info))
        return True

"""The README's error tables say what the API answers: every code with its HTTP status.

The first table is the one status table (``loyalty.kernel.statuses.REFUSAL_STATUS``)
grouped by status; the second, the codes answered before any service runs (DRF's own
exceptions as ``loyalty.api.errors.BUILTIN`` renames them, the till's signature check,
retired paths). Both are compared row by row, both ways: a code the README lists that
the API does not answer, with another status, or a code the API answers that the README
leaves out, fails. On failure the message carries the table to paste.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from rest_framework import exceptions

from loyalty.api.errors import BUILTIN
from loyalty.kernel.statuses import REFUSAL_STATUS

README = Path(__file__).resolve().parents[3] / "README.md"
STATUS_TABLE_HEADING = "### Error codes"
EDGE_TABLE_HEADING = "### Errors answered before any service"
ROOTS = ("loyalty", "members", "vouchers")

# Codes the edge answers outside the one table, with where they come from.
EDGE_CODES = {
    # loyalty/api/auth.py: the till's signature (401)
    "invalid_timestamp": 401,
    "invalid_till_key": 401,
    "invalid_signature": 401,
    "timestamp_out_of_window": 401,
    # loyalty/api/serializers.py: a malformed loyalty number names the whole refusal
    "invalid_loyalty_number": 400,
    # loyalty/ledger/api/points.py: the retired balance path
    "balance_lookup_retired": 410,
    # loyalty/api/errors.py: anything unexpected
    "server_error": 500,
}


def drf_status(default_code: str) -> int:
    """The status of the DRF exception whose ``default_code`` this is."""
    found = [cls.status_code for cls in vars(exceptions).values() if isinstance(cls, type)
             and issubclass(cls, exceptions.APIException) and cls.default_code == default_code]  # fmt: skip
    assert len(found) == 1, default_code
    return found[0]


def edge_statuses() -> dict[str, int]:
    statuses = {ours: drf_status(drf) for drf, (ours, _message) in BUILTIN.items()}
    statuses.update(EDGE_CODES)
    return {code: status for code, status in statuses.items() if code not in REFUSAL_STATUS}


def section(heading: str) -> str:
    text = README.read_text()
    assert heading in text, f"README has no {heading!r} section"
    body = text.split(heading, 1)[1]
    return re.split(r"\n#{1,3} ", body, maxsplit=1)[0]


def table_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows[1:]  # the header row


def codes_in(cell: str) -> list[str]:
    return re.findall(r"`([a-z_*:]+)`", cell)


def status_table_markdown() -> str:
    by_status = defaultdict(list)
    for code, status in REFUSAL_STATUS.items():
        by_status[status].append(code)
    lines = ["| HTTP status | codes |", "|---|---|"]
    lines += [f"| {status} | {', '.join(f'`{c}`' for c in by_status[status])} |" for status in sorted(by_status)]
    return "\n".join(lines)


def edge_table_markdown() -> str:
    lines = ["| code | HTTP status |", "|---|---|"]
    lines += [
        f"| `{code}` | {status} |" for code, status in sorted(edge_statuses().items(), key=lambda i: (i[1], i[0]))
    ]
    return "\n".join(lines)


def readme_status_table() -> dict[str, int]:
    listed: dict[str, int] = {}
    for status, cell in table_rows(section(STATUS_TABLE_HEADING)):
        for code in codes_in(cell):
            assert code not in listed, f"{code} is listed twice"
            listed[code] = int(status)
    return listed


def readme_edge_table() -> dict[str, int]:
    listed: dict[str, int] = {}
    for cells in table_rows(section(EDGE_TABLE_HEADING)):
        (code,) = codes_in(cells[0])
        listed[code] = int(cells[1])
    return listed


def test_the_readme_status_table_is_the_one_status_table_both_ways():
    listed = readme_status_table()
    assert listed == REFUSAL_STATUS, f"README.md, {STATUS_TABLE_HEADING}: paste\n\n{status_table_markdown()}\n"


def test_the_readme_edge_table_is_what_the_edge_answers_both_ways():
    listed = readme_edge_table()
    assert listed == edge_statuses(), f"README.md, {EDGE_TABLE_HEADING}: paste\n\n{edge_table_markdown()}\n"


def test_every_edge_code_is_answered_by_the_code():
    """A row kept in EDGE_CODES for a code nothing answers any more fails here."""
    sources = "\n".join(p.read_text() for root in ROOTS for p in (README.parent / root).rglob("*.py"))
    missing = [code for code in EDGE_CODES if f'"{code}"' not in sources]
    assert not missing

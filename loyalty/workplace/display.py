"""Names and links: one way to render each thing staff meet in the admin.

Every function returns safe HTML (or plain text for the ``*_label`` ones) and "—" for
nothing. A link is drawn only for a viewer who may open the page behind it (its view
permission); without a viewer, or without the permission, the name is plain text.
Scoping beyond the permission is the target page's business: it answers 404 outside
the viewer's stores.

Members are shown by masked name and loyalty number, never a UUID and never personal
data in clear; vouchers by their masked code (the last group, which holds the check
character), never the whole code; times in the programme's time zone (settings.TIME_ZONE)
with the offset in the tooltip.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from django.db import models
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from loyalty.kernel.crypto import DecryptionFailed

NOTHING = "—"
MASK = "••••"


def admin_url(obj: models.Model, view: str = "change") -> str | None:
    """The admin page of ``obj`` (``change`` shows the read-only page too), or None."""
    opts = obj._meta
    try:
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=[obj.pk])
    except NoReverseMatch:
        return None


def may_view(viewer, obj_or_model) -> bool:
    """Whether ``viewer`` holds the view (or change) permission of the model."""
    if viewer is None or not getattr(viewer, "is_authenticated", False):
        return False
    opts = obj_or_model._meta
    return viewer.has_perm(f"{opts.app_label}.view_{opts.model_name}") or viewer.has_perm(
        f"{opts.app_label}.change_{opts.model_name}"
    )


def link(obj: models.Model | None, text: str, viewer=None, *, css: str = "") -> SafeString:
    """``text`` linked to ``obj``'s admin page when ``viewer`` may open it."""
    if obj is None:
        return SafeString(NOTHING)
    url = admin_url(obj) if may_view(viewer, obj) else None
    if url is None:
        return format_html('<span class="{}">{}</span>', css, text) if css else format_html("{}", text)
    return (
        format_html('<a href="{}" class="{}">{}</a>', url, css, text)
        if css
        else format_html('<a href="{}">{}</a>', url, text)
    )


# --- members ---------------------------------------------------------------------------------


def member_label(member) -> str:
    """``A••• R••• · 9900 1234 5678 9012``: the masked name (when there is one) and the
    loyalty number in groups of four. Never the UUID, never a value in clear."""
    if member is None:
        return NOTHING
    from members.services.pii import member_pii_is_erased, member_pii_value, name_mask

    number = " ".join(member.loyalty_number[i : i + 4] for i in range(0, len(member.loyalty_number), 4))
    try:
        name = "erased" if member_pii_is_erased(member) else name_mask(member_pii_value(member, "name"))
    except DecryptionFailed:
        name = ""
    return f"{name} · {number}" if name else number


def member_link(member, viewer=None) -> SafeString:
    return link(member, member_label(member), viewer, css="member-ref")


# --- staff, stores, tills --------------------------------------------------------------------


def staff_label(user) -> str:
    """The staff member's full name and user name (``Aminah Yusof (manager)``), or the
    user name alone."""
    if user is None:
        return NOTHING
    full = user.get_full_name() if hasattr(user, "get_full_name") else ""
    return f"{full} ({user.get_username()})" if full else user.get_username()


def staff_link(user, viewer=None) -> SafeString:
    return link(user, staff_label(user), viewer, css="staff-ref")


def store_label(store) -> str:
    return NOTHING if store is None else f"{store.code} {store.name}"


def store_link(store, viewer=None) -> SafeString:
    return link(store, store_label(store), viewer, css="store-ref")


def till_label(till) -> str:
    return NOTHING if till is None else f"till {till.code} at {till.store.code}"


def till_link(till, viewer=None) -> SafeString:
    return link(till, till_label(till), viewer, css="till-ref")


# --- operations and vouchers -----------------------------------------------------------------


def operation_label(operation) -> str:
    """``Earn of 120 points, 2026-12-04 18:31``: what, how much and when (never the UUID)."""
    if operation is None:
        return NOTHING
    return f"{operation.get_kind_display()} of {operation.points} points, {local_time_text(operation.created_at)}"


def operation_link(operation, viewer=None) -> SafeString:
    return link(operation, operation_label(operation), viewer, css="operation-ref")


def voucher_code_masked(code: str) -> str:
    """``••••-••••-••••-K7QX``: only the last group (with the check character)."""
    return f"{MASK}-{MASK}-{MASK}-{code[-4:]}" if code else NOTHING


def voucher_label(voucher) -> str:
    if voucher is None:
        return NOTHING
    return f"{voucher.reward.name} {voucher_code_masked(voucher.code)}"


def voucher_link(voucher, viewer=None) -> SafeString:
    return link(voucher, voucher_label(voucher), viewer, css="voucher-ref")


# --- figures, times, codes -------------------------------------------------------------------


def points_signed(points: int | None) -> SafeString:
    """``+120`` or ``−40`` (a true minus sign), classed for colour; "0" is unsigned."""
    if points is None:
        return SafeString(NOTHING)
    if points > 0:
        return format_html('<span class="points points-in">+{}</span>', f"{points:,}")
    if points < 0:
        return format_html('<span class="points points-out">\u2212{}</span>', f"{-points:,}")
    return SafeString('<span class="points">0</span>')


def local_time_text(moment: datetime | date | None) -> str:
    """``2026-12-04 18:31`` in the programme's time zone (a date as ``2026-12-04``)."""
    if moment is None:
        return NOTHING
    if isinstance(moment, datetime):
        return f"{timezone.localtime(moment):%Y-%m-%d %H:%M}"
    return f"{moment:%Y-%m-%d}"


def local_time(moment: datetime | date | None) -> SafeString:
    """``local_time_text`` in a ``<time>`` element whose tooltip and datetime give the
    ISO 8601 instant with its offset."""
    if not isinstance(moment, datetime):
        return format_html("{}", local_time_text(moment))
    local = timezone.localtime(moment)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>', local.isoformat(), local.isoformat(), local_time_text(local)
    )


def choice_label(choices: Iterable[tuple[Any, str]], value: Any) -> str:
    """The human label of ``value`` among ``choices`` (a TextChoices' ``.choices``), or
    the value itself, made readable (``till_offline`` → ``Till offline``)."""
    labels = dict(choices)
    if value in labels:
        return str(labels[value])
    return str(value).replace("_", " ").capitalize() if value not in (None, "") else NOTHING


def facts_table(facts: Mapping[str, Any] | None, *, labels: Mapping[str, str] | None = None) -> SafeString:
    """A structured record (an alert's facts, an event's details) as a two-column table
    instead of raw JSON: keys made readable (or named by ``labels``), lists joined,
    nested mappings as compact JSON."""
    if not facts:
        return SafeString(NOTHING)
    names = labels or {}

    def shown(value: Any) -> str:
        if isinstance(value, (list, tuple)):
            return ", ".join(str(v) for v in value) or NOTHING
        if isinstance(value, Mapping):
            return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
        if isinstance(value, bool):
            return "yes" if value else "no"
        return NOTHING if value in (None, "") else str(value)

    rows = ((names.get(key) or choice_label((), key), shown(value)) for key, value in facts.items())
    return format_html(
        '<table class="facts"><tbody>{}</tbody></table>', format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows)
    )


def yes_no(value: bool | None) -> SafeString:
    """A word, not an icon: ``Yes`` / ``No`` (Django's red cross reads as an error)."""
    if value is None:
        return SafeString(NOTHING)
    return format_html('<span class="flag flag-{}">{}</span>', "yes" if value else "no", "Yes" if value else "No")

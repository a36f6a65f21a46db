"""The terms and conditions, as the members' layer sees them: hooks the compliance app
installs at start-up (``compliance.apps``), because the members' layer sits below
compliance and may not import it (the import-linter layers).

- ``terms_gate(member)``: raises the refusal ``consumer:terms_acceptance_required``
  (403) when terms are in force that the member has not accepted. The member API calls
  it before every state-changing endpoint not exempted (``members.api.base.MeApi``).
- ``terms_current_version()``: the version in force, or None.
- ``terms_accept_at_enrolment(member, version, channel)``: records the acceptance of
  ``version`` when it is the one in force (True), else nothing (False: the member is
  asked at their next sign-in).

Without an installed implementation no terms exist for this layer: nothing is refused,
nothing recorded (compliance is always installed in the product; the default only
keeps this layer usable on its own).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from members.models import Member


@dataclass(frozen=True)
class TermsHooks:
    gate: Callable[[Member], None]
    current_version: Callable[[], int | None]
    accept: Callable[[Member, int, str], bool]


_hooks: TermsHooks | None = None


def install(hooks: TermsHooks | None) -> None:
    global _hooks
    _hooks = hooks


def terms_gate(member: Member) -> None:
    if _hooks is not None:
        _hooks.gate(member)


def terms_current_version() -> int | None:
    return _hooks.current_version() if _hooks is not None else None


def terms_accept_at_enrolment(member: Member, version: int, channel: str) -> bool:
    return _hooks.accept(member, version, channel) if _hooks is not None else False

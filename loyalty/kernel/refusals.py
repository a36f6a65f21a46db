"""The one domain refusal every service of the product raises.

A refusal is an answer, not a crash: a stable snake_case ``code`` clients and staff
screens branch on, a ``message`` for people, and ``facts`` that are safe to show and
to log (ids, counts, limits, statuses; never a code, token, loyalty number or personal
data). Services know nothing of HTTP: the API edge maps codes to statuses in one table
(``loyalty.kernel.statuses.REFUSAL_STATUS``, answered by ``loyalty.api.errors``) and the admin turns the same refusal into a form
error or a message (``staffauth.admin_base``).

A family of refusals (the ledger's, a session's...) may subclass ``Refusal`` so callers
can catch just that family, and may give each code its message; it adds no behaviour.
"""

from __future__ import annotations

from typing import Any, ClassVar


class Refusal(Exception):
    """A refused operation: ``code``, ``message`` (``str(refusal)``) and ``facts``.

    ``Refusal("out_of_stock")`` takes the family's message for the code, or the
    family's default message; ``retry_after`` (seconds) tells a caller when trying
    again can succeed (an API answers it as ``Retry-After``).
    """

    code: str = "refused"
    message: str = "The operation was refused."
    # The family's message per code, where one class carries many codes.
    MESSAGES: ClassVar[dict[str, str]] = {}
    # Set only where one code means another status on another surface (the till's
    # member-authorisation codes share their names with member sign-in's): the status
    # table then has a "family:code" row for it.
    family: ClassVar[str] = ""

    def __init__(
        self, code: str | None = None, message: str | None = None, *, retry_after: int | None = None, **facts: Any
    ) -> None:
        self.code = code or type(self).code
        self.facts: dict[str, Any] = facts
        self.retry_after = retry_after
        super().__init__(message or self.MESSAGES.get(self.code) or type(self).message)

    @property
    def detail(self) -> dict[str, Any]:
        """The facts, under the name the error body gives them."""
        return self.facts

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r})"

"""Member API fixtures shared by the free-text guard tests (test_input_guards,
test_door_guards). Modules with their own ``member`` or ``api`` define them locally."""

from __future__ import annotations

import pytest

from members.services.membership import member_create
from tests.member_client import member_client
from tests.members.api.input_guard_helpers import ADDRESS, NAME


@pytest.fixture
def member(store_a):
    """A member with a name, a phone and an address on file."""
    return member_create(home_store=store_a, name=NAME, phone="+60 12-555 0101", address=ADDRESS)


@pytest.fixture
def api(member):
    """The member's app client, signed in."""
    return member_client(member, fingerprint="fp-guards")

"""Data-subject requests: members with personal data and points (the members' and ledger's fixtures)."""

from tests.loyalty.conftest import earn, till, till_actor  # noqa: F401
from tests.members.conftest import SEEDED, seeded_members, sms_outbox, step_up  # noqa: F401

"""The register drives the fides dataset and the log filter's redaction."""

from __future__ import annotations

import io
import logging

import yaml
from django.core.management import call_command

from compliance import register
from staffauth.logging import REDACTED, RedactingFilter


def test_fides_dataset_tags_every_column():
    out = io.StringIO()
    call_command("compliance_fides_dataset", stdout=out)
    data = yaml.safe_load(out.getvalue())
    (dataset,) = data["dataset"]
    tables = {c["name"]: {f["name"]: f for f in c["fields"]} for c in dataset["collections"]}
    email = tables["members_member"]["email_encrypted"]
    assert email["data_categories"] == ["user.contact.email"]
    assert "restricted" in email["description"]
    assert tables["django_session"]["session_key"]["data_categories"] == ["system.operations"]
    categories = {cat for t in tables.values() for f in t.values() for cat in f["data_categories"]}
    assert categories <= register.FIDESLANG_CATEGORIES
    assert sum(len(t) for t in tables.values()) > len(register.REGISTER)  # project + third-party


def _record(**extra):
    record = logging.LogRecord("loyalty", logging.INFO, __file__, 1, "member updated", None, None)
    record.__dict__.update(extra)
    return record


def test_log_filter_redacts_attributes_named_after_restricted_fields():
    record = _record(email="ann@example.com", first_name="Ann", member_id=7, ip="192.0.2.1")
    RedactingFilter().filter(record)
    assert record.email == REDACTED
    assert record.first_name == REDACTED
    assert record.member_id == 7  # internal: pseudonymous id stays
    assert record.ip == "192.0.2.1"  # security events carry IPs


def test_log_redaction_follows_the_register(monkeypatch):
    from staffauth import logging as staff_logging

    monkeypatch.setitem(
        register.REGISTER,
        "loyalty.Store.region",
        register.Entry("restricted", "user.location.coarse", "transaction", "keep"),
    )
    monkeypatch.setattr(staff_logging, "RESTRICTED_ATTRIBUTES", register.log_redacted_names())
    record = _record(region="North")
    RedactingFilter().filter(record)
    assert record.region == REDACTED

"""The classification register covers every field, and restricted fields stay unmasked nowhere
(COMPLIANCE.md §1)."""

from __future__ import annotations

import pytest
from auditlog.registry import auditlog
from django.apps import apps
from django.db import models
from django.urls import get_resolver
from rest_framework import serializers

from compliance import register

SENTINEL = "Zq9RestrictedSentinel"


def unclassified(register_: dict[str, register.Entry]) -> list[str]:
    missing = []
    for model in apps.get_models():
        app = model._meta.app_label
        for field in model._meta.concrete_fields:
            key = f"{app}.{model.__name__}.{field.name}"
            if app in register.PROJECT_APPS:
                if key not in register_:
                    missing.append(key)
            elif f"{app}.{model.__name__}.*" not in register.WILDCARDS and f"{app}.*" not in register.WILDCARDS:
                missing.append(key)
    return missing


def stale(register_: dict[str, register.Entry]) -> list[str]:
    existing = {
        f"{m._meta.app_label}.{m.__name__}.{f.name}" for m in apps.get_models() for f in m._meta.concrete_fields
    }
    return sorted(set(register_) - existing)


def unknown_categories(register_: dict[str, register.Entry]) -> list[str]:
    entries = {**register_, **register.WILDCARDS}
    return [
        k
        for k, e in entries.items()
        if e.category not in register.FIDESLANG_CATEGORIES or e.level not in register.LEVELS
    ]


def test_every_field_is_classified_and_no_entry_is_stale():
    assert unclassified(register.REGISTER) == []
    assert stale(register.REGISTER) == []
    assert unknown_categories(register.REGISTER) == []


def test_wildcards_only_for_third_party_apps():
    assert not [w for w in register.WILDCARDS if w.split(".")[0] in register.PROJECT_APPS]


@pytest.mark.parametrize(
    "mutate, check",
    [
        (lambda r: r.pop("members.Member.email_encrypted"), unclassified),
        (lambda r: r.__setitem__("members.Member.shoe_size", r["members.Member.status"]), stale),
        (
            lambda r: r.__setitem__(
                "members.Member.status",
                register.Entry("internal", "user.shoe_size", "transaction", "keep"),
            ),
            unknown_categories,
        ),
    ],
    ids=["unclassified", "stale", "unknown-fideslang-key"],
)
def test_the_checks_can_fail(mutate, check):
    broken = dict(register.REGISTER)
    mutate(broken)
    assert check(broken) != []


def test_api_answers():
    from members.models import Member

    assert register.entry(Member, "email_encrypted").level == "restricted"
    assert register.entry("sessions.Session", "session_key").secret
    assert "members.Member.password_hash" in register.restricted_fields()
    assert "password_hash" not in register.export_fields(Member)  # secrets are never exported
    assert "name_encrypted" in register.export_fields(Member)
    assert register.retention_of(Member) == "member-PII"
    assert register.retention_of("loyalty.LedgerOperation") == "transaction"
    assert "members.Member.status" in register.fields(level="internal", export=True)
    with pytest.raises(KeyError):
        register.entry(Member, "shoe_size")


def auditlog_leaks() -> list[str]:
    leaks = []
    for model, options in auditlog._registry.items():
        hidden = set(options["exclude_fields"]) | set(options["mask_fields"])
        included = set(options["include_fields"]) or {f.name for f in model._meta.concrete_fields}
        for name in register.restricted_names(model) & included:
            if name not in hidden:
                leaks.append(f"{model._meta.label}.{name}")
    return leaks


def test_restricted_fields_are_excluded_or_masked_in_audit_diffs():
    assert auditlog_leaks() == []


def test_audit_check_can_fail(monkeypatch):

    monkeypatch.setitem(
        register.REGISTER, "loyalty.Store.name", register.Entry("restricted", "user.name", "transaction", "keep")
    )
    assert auditlog_leaks() == ["loyalty.Store.name"]


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def serializer_leaks() -> list[str]:
    _ = get_resolver().url_patterns  # imports every view module (and its serializers)
    leaks = []
    for ser in _all_subclasses(serializers.ModelSerializer):
        model = getattr(getattr(ser, "Meta", None), "model", None)
        if model is None or model._meta.app_label not in register.PROJECT_APPS:
            continue
        restricted = register.restricted_names(model)
        for name, field in ser().fields.items():
            source = (field.source or name).split(".")[0]
            if source in restricted or name in restricted:
                leaks.append(f"{ser.__module__}.{ser.__name__}.{name}")
    return leaks


def test_serializers_do_not_carry_restricted_fields():
    assert serializer_leaks() == []


def _restricted_instance(model: type[models.Model]) -> models.Model | None:
    instance = model()
    restricted = register.restricted_names(model)
    touched = False
    for field in model._meta.concrete_fields:
        if field.name in restricted and isinstance(field, (models.CharField, models.TextField)):
            setattr(instance, field.attname, SENTINEL)
            touched = True
    return instance if touched else None


def str_leaks() -> list[str]:
    leaks = []
    for model in apps.get_models():
        if model._meta.app_label not in register.PROJECT_APPS:
            continue
        instance = _restricted_instance(model)
        if instance is None:
            continue
        try:
            text = str(instance)
        except (
            AttributeError,
            TypeError,
            ValueError,
            LookupError,
        ):  # __str__ that needs related rows: those are not restricted values
            continue
        if SENTINEL in text:
            leaks.append(model._meta.label)
    return leaks


def test_str_shows_no_restricted_value():
    assert str_leaks() == []


def test_str_check_can_fail(monkeypatch):
    monkeypatch.setitem(
        register.REGISTER, "loyalty.Store.name", register.Entry("restricted", "user.name", "transaction", "keep")
    )
    assert "loyalty.Store" in str_leaks()

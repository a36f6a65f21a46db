"""Fixtures for the fraud app's tests: alerts raised through ``fraud.services``, as a
detector in another app raises them (facts as ids and counts)."""

from __future__ import annotations

import itertools
import uuid

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from fraud.services import voucher_rescan_alert_raise
from members.models import Member


@pytest.fixture
def make_alert(store_a):
    """A ``voucher_rescan`` alert at ``store`` (store A by default), a new one each call."""
    counter = itertools.count(1)

    def make(store=None, **facts):
        store = store or store_a
        facts = {
            "voucher_id": uuid.uuid4(),
            "member_id": Member.objects.create(home_store=store).pk,
            "staff_id": None,
            "store_id": store.pk,
            "till_id": next(counter),
            "redeemed_at_till_id": None,
            "now": timezone.now(),
            **facts,
        }
        return voucher_rescan_alert_raise(**facts)

    return make


@pytest.fixture
def grant():
    """Add model permissions (``app_label.codename``) to a user; returns a fresh object
    (no cached permissions)."""

    def add(user, *perms):
        for perm in perms:
            app_label, codename = perm.split(".")
            user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        return type(user).objects.get(pk=user.pk)

    return add

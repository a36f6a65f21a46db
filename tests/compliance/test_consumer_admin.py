"""The complaints queue and the terms pages in the admin."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from compliance import consumer
from compliance.models import TermsVersion
from members.models import Member
from tests.conftest import login_verified

pytestmark = pytest.mark.django_db


def test_queue_highlights_overdue_and_is_store_scoped(staff_by_role, store_a, store_b, settings):
    admin_user, manager = staff_by_role["program_admin"], staff_by_role["store_manager"]
    member = Member.objects.create(home_store=store_a)
    mine = consumer.complaint_file(
        member=member, kind="service", subject="A", body="-", store_id=store_a.pk, actor=admin_user
    )
    consumer.complaint_file(member=member, kind="service", subject="B", body="-", store_id=store_b.pk, actor=admin_user)
    settings.COMPLAINTS = settings.COMPLAINTS | {"respond_business_days": 0}
    overdue = consumer.complaint_file(member=member, kind="complaint", subject="C", body="-", actor=admin_user)
    client = login_verified(Client(), manager)
    page = client.get("/admin/compliance/complaint/").content.decode()
    assert f"C-{mine.pk}" in page and "C-" + str(mine.pk + 1) not in page and f"C-{overdue.pk}" not in page
    assert client.get(f"/admin/compliance/complaint/{mine.pk + 1}/change/").status_code == 404
    hq = login_verified(Client(), admin_user)
    later = hq.get("/admin/compliance/complaint/").content.decode()
    assert later.count("complaint-due") == 3  # filed on a weekend or within the days: none overdue yet
    overdue_page = hq.get("/admin/compliance/complaint/?due=overdue")
    assert overdue_page.status_code == 200
    page = hq.get(f"/admin/compliance/complaint/{mine.pk}/change/").content.decode()
    assert f"/admin/members/member/{member.pk}/change/" in page  # the member linked, by name


def test_deadline_column_marks_overdue_one_second_after_the_deadline():
    from django.contrib import admin

    from compliance.models import Complaint

    model_admin = admin.site._registry[Complaint]
    now = timezone.now()
    for due, css in ((now + timedelta(seconds=60), "complaint-due"), (now - timedelta(seconds=1), "complaint-overdue")):
        row = Complaint(state="open", respond_by=due, resolve_by=due + timedelta(days=20))
        assert f'class="{css}"' in model_admin.deadline(row)
    answered = Complaint(
        state="responded",
        first_responded_at=now,
        respond_by=now - timedelta(days=1),
        resolve_by=now + timedelta(days=1),
    )
    assert 'class="complaint-due"' in model_admin.deadline(answered)  # the resolution deadline counts now


def test_terms_publish_needs_the_typed_confirmation(staff_by_role):
    admin_user = staff_by_role["program_admin"]
    draft = consumer.terms_draft_save(actor=admin_user, title="T", body="B", effective_from=timezone.now())
    client = login_verified(Client(), admin_user)
    client.post(f"/admin/compliance/termsversion/{draft.pk}/publish/", {"confirm": "yes"})
    assert not TermsVersion.objects.get(pk=draft.pk).is_published
    client.post(f"/admin/compliance/termsversion/{draft.pk}/publish/", {"confirm": f"v{draft.version}"})
    assert TermsVersion.objects.get(pk=draft.pk).is_published
    page = client.get(f"/admin/compliance/termsversion/{draft.pk}/change/").content.decode()
    assert "cannot be edited" in page
    assert "0 acceptances" in page

"""The schedules' admin (django-celery-beat's PeriodicTask): each shipped schedule's form
shows its task selected in "Task (registered)", and the form runs under the strict CSP
(no inline script) in a real browser."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, PeriodicTask
from playwright.sync_api import expect

from tests.browser import log_in, open_page
from tests.conftest import login_verified

SHIPPED_TASK = "loyalty.tasks.adjustment_report_task"


@pytest.mark.django_db
def test_every_shipped_schedule_shows_its_task_selected(make_staff):
    client = login_verified(Client(), make_staff("sysadmin", "system_admin"))
    shipped = list(PeriodicTask.objects.exclude(task__startswith="celery."))
    assert len(shipped) >= 5  # the data migrations' schedules

    for schedule in shipped:
        response = client.get(reverse("admin:django_celery_beat_periodictask_change", args=[schedule.pk]))
        assert response.status_code == 200
        form = response.context_data["adminform"].form
        assert form["regtask"].value() == schedule.task, schedule.name
        html = response.content.decode()
        assert re.search(rf'<option value="{re.escape(schedule.task)}" selected>', html), schedule.name


@pytest.mark.django_db
def test_the_registered_tasks_are_the_products_schedulable_jobs(make_staff):
    client = login_verified(Client(), make_staff("sysadmin", "system_admin"))
    form = client.get(reverse("admin:django_celery_beat_periodictask_add")).context_data["adminform"].form
    offered = [value for value, _ in form.fields["regtask"].widget.choices if value]
    assert SHIPPED_TASK in offered and "loyalty.tasks.points_expire_task" in offered
    assert all(re.match(r"^(loyalty|staffauth|members|vouchers|fraud|compliance)\.tasks\.", name) for name in offered)


@pytest.mark.browser
def test_the_schedule_form_has_no_csp_violation_in_chromium(browser, live_server, csp_violations, make_staff):
    # given: a schedule of a shipped job
    crontab = CrontabSchedule.objects.create(minute="30", hour="1", timezone="UTC")
    schedule = PeriodicTask.objects.create(name="Adjustment report (browser test)", task=SHIPPED_TASK, crontab=crontab)
    context, page = open_page(browser, live_server.url, csp_violations, viewport={"width": 1400, "height": 900})
    try:
        log_in(page, make_staff("sysadmin", "system_admin"))

        # when: the system administrator opens it
        page.goto(f"/admin/django_celery_beat/periodictask/{schedule.pk}/change/")

        # then: the task is selected, the crontab readable, and nothing was blocked
        expect(page.locator("#id_regtask")).to_have_value(SHIPPED_TASK)
        expect(page.locator(".field-crontab_translation")).to_contain_text("01:30")
        page.select_option("#id_crontab", str(crontab.pk))
        page.wait_for_timeout(200)
        assert page.evaluate("window.__csp") == []
        assert csp_violations == []
    finally:
        context.close()

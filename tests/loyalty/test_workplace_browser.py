"""Each role's landing page in real Chromium: it renders under the strict CSP with zero
violations (the charts are server-drawn SVG, styled by the stylesheet), and a screenshot
per role goes to test-artifacts/landing-<role>.png."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from loyalty.kernel.models import JobRun
from loyalty.ledger.operations import Actor, points_earn, points_redeem
from loyalty.workplace.dashboards import ROLE_TITLES
from members.models import Member
from staffauth.roles import ROLES
from tests.browser import ARTIFACTS, log_in, open_page

pytestmark = pytest.mark.browser


@pytest.fixture
def landing_world(make_staff, store_a, velocity_off):
    people = {key: make_staff(key, key, stores=[store_a] if role.store_scoped else []) for key, role in ROLES.items()}
    member = Member.objects.create(home_store=store_a)
    cashier = Actor(staff=people["cashier"], store=store_a)
    assert points_earn(member=member, points=640, receipt_ref="R-1", actor=cashier, idempotency_key="k-1").ok
    assert points_redeem(member=member, points=120, actor=cashier, idempotency_key="k-2").ok
    from django.utils import timezone

    now = timezone.now()
    JobRun.objects.create(task_name="loyalty.tasks.points_expire_task", started_at=now, finished_at=now, state="failure", error="OperationalError")  # fmt: skip
    return people


@pytest.mark.parametrize("role", list(ROLES))
def test_each_roles_landing_renders_under_the_csp(browser, live_server, csp_violations, landing_world, role):
    context, page = open_page(browser, live_server.url, csp_violations, viewport={"width": 1400, "height": 900})
    try:
        log_in(page, landing_world[role])

        expect(page.locator("#content h1")).to_contain_text(ROLE_TITLES[role])
        expect(page.locator("#workplace-shortcuts")).to_be_visible()
        expect(page.locator("#all-records")).to_be_visible()
        if role != "system_admin":
            chart = page.locator("#figure-issued svg.chart-bars")
            expect(chart).to_be_visible()
            # Drawn by the stylesheet: a bar has a fill colour from workplace.css, not the default black.
            fill = chart.locator("rect.bar:not(.bar-zero)").first.evaluate("e => getComputedStyle(e).fill")
            assert fill not in ("rgb(0, 0, 0)", "none")
        else:
            expect(page.locator("#job-schedules")).to_be_visible()
            expect(page.locator("#job-failures")).to_contain_text("OperationalError")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / f"landing-{role}.png", full_page=True)
        assert page.evaluate("window.__csp") == []
        assert csp_violations == []
    finally:
        context.close()

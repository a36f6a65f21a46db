"""The staff workplace as each role sees it: a real-Chromium tour of every admin page.

Loads the demo data (``seed_demo``), signs in as each demo staff user (password, then
TOTP) and walks every admin page that user can reach, at 1,400 px and at tablet width
(800 px): the landing page; for every registered model the role may view, its list, its
add page if allowed and the change page of the first object the list shows (the link in
the browser, so store scoping applies); then every GET page of the admin those pages link
to, one per URL pattern. Each page must answer 200 with no console error, no CSP
violation and, on list pages, no horizontal scroll. A screenshot per page goes to
test-artifacts/tour/<user>/<width>/; the page-load times are printed (not asserted: the
test guide forbids timed asserts).

Run alone with ``-m browser -k tour``; TOUR_USERS=manager,fraud tours only those users.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
from dataclasses import dataclass, field
from io import StringIO
from urllib.parse import urlsplit

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.test import RequestFactory, override_settings
from django.urls import Resolver404, resolve, reverse

from staffauth.models import StaffUser
from tests.browser import ARTIFACTS, log_in, open_page
from tests.conftest import PASSWORD
from tests.reporting import add_figure

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDTHS = (1400, 800)
HEIGHT = 900
TOUR = ARTIFACTS / "tour"

# Admin URL names the tour never opens: they sign out, delete, act (approve, reject,
# reveal personal data), download a file, show an MFA secret, or are not pages.
SKIPPED_NAMES = re.compile(
    r"logout|delete|otp_verify|otp_enrol|jsi18n|autocomplete|view_on_site|approve|reject|reveal"
    r"|_csv$|_document$|_file$|qrcode|_config$|password_change_done"
)

# Browser-side figures of the page just loaded (after its load event has finished).
PAGE_FIGURES = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const root = document.documentElement;
  return {
    server: nav.responseEnd - nav.requestStart,
    load: nav.loadEventEnd - nav.startTime,
    scrollWidth: root.scrollWidth,
    clientWidth: root.clientWidth,
    // A list's table scrolls inside its box: the columns past the edge are off-screen.
    resultsHidden: Array.from(document.querySelectorAll("#changelist-form .results"))
      .some((box) => box.scrollWidth > box.clientWidth + 1),
  };
}"""
LOADED = "() => performance.getEntriesByType('navigation')[0].loadEventEnd > 0"
# The admin links on a page: every href under /admin/, as the browser resolved it.
ADMIN_LINKS = """() => Array.from(document.querySelectorAll("a[href]"), (a) => a.href)
  .filter((h) => new URL(h).pathname.startsWith("/admin/"))"""


@dataclass
class Visit:
    page: str  # the URL pattern's name (or the path when none)
    url: str
    width: int
    status: int = 0
    server_ms: float = 0.0
    load_ms: float = 0.0
    is_list: bool = False
    scrolls: bool = False
    columns_hidden: bool = False  # the results table scrolls inside its box
    console_errors: list = field(default_factory=list)
    csp: list = field(default_factory=list)
    problem: str = ""
    role: str = ""
    linked_from: str = ""  # the page whose link the tour followed (none: it went there itself)

    def failures(self) -> list[tuple[str, str, str]]:
        """(where, what, width) of each thing wrong with this page."""
        where = f"{self.role}: {urlsplit(self.url).path}" + (
            f" (linked from {self.linked_from})" if self.linked_from else ""
        )
        found = []
        if self.problem:
            found.append(self.problem)
        if self.status != 200:
            found.append(f"HTTP {self.status}")
        else:  # a refused page's own console line says the same again
            found += [f"console error: {e}" for e in self.console_errors if "Content Security Policy" not in e]
        events = [v for v in self.csp if isinstance(v, dict)]
        found += [f"CSP violation: {v['directive']} blocked {v['blocked']} (line {v['line']})" for v in events]
        if not events:
            found += [f"CSP violation: {v}" for v in self.csp]
        if self.is_list and self.scrolls:
            found.append("list page scrolls horizontally")
        if self.is_list and self.columns_hidden:
            found.append("list's table scrolls sideways: columns off-screen")
        return [(where, what, str(self.width)) for what in found]


def page_key(url: str) -> tuple[str, str, bool]:
    """(dedupe key, page name, is a list page) of an admin URL: its URL pattern."""
    path = urlsplit(url).path
    try:
        match = resolve(path)
    except Resolver404:
        return path, path, False
    name = match.url_name or match.route
    if name == "app_list":  # one route per app label: one page
        return name, name, False
    if name.endswith("_history"):  # Django's history view, the same for every model: one is enough
        return "history", name, False
    return match.route, name, name.endswith("_changelist")


def skipped(url: str) -> bool:
    parts = urlsplit(url)
    if not parts.path.startswith("/admin/"):
        return True
    try:
        name = resolve(parts.path).url_name or ""
    except Resolver404:
        return False
    return bool(SKIPPED_NAMES.search(name))


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "index"


def reachable_models(user) -> list[tuple[str, str | None]]:
    """(changelist URL, add URL or None) of every registered model ``user`` may view."""
    request = RequestFactory().get("/admin/")
    request.user = user
    found = []
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        if not model_admin.has_view_or_change_permission(request):
            continue
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        add = (
            reverse(f"admin:{opts.app_label}_{opts.model_name}_add")
            if model_admin.has_add_permission(request)
            else None
        )
        found.append((changelist, add))
    return sorted(found)


class Tour:
    """One signed-in browser context: visits pages, records what each one shows."""

    def __init__(self, page, csp_violations: list, role: str):
        self.page = page
        self.csp_violations = csp_violations
        self.role = role
        self.console: list[str] = []
        page.on("console", lambda msg: self.console.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda error: self.console.append(f"uncaught: {error}"))

    def visit(self, url: str, width: int, linked_from: str = "") -> tuple[Visit, list[str]]:
        """Open ``url``; the visit and the admin links the page shows."""
        key, name, is_list = page_key(url)
        visit = Visit(page=name, url=url, width=width, is_list=is_list, linked_from=linked_from)
        self.console.clear()
        csp_before = len(self.csp_violations)
        try:
            response = self.page.goto(url)
        except Exception as error:  # a download, a crash: reported, not raised
            visit.problem = f"did not open: {str(error).splitlines()[0]}"
            return visit, []
        visit.status = response.status if response else 0
        if urlsplit(self.page.url).path != urlsplit(url).path:
            visit.problem = f"redirected to {urlsplit(self.page.url).path}"
        self.page.wait_for_function(LOADED)
        figures = self.page.evaluate(PAGE_FIGURES)
        visit.server_ms = figures["server"]
        visit.load_ms = figures["load"]
        visit.scrolls = figures["scrollWidth"] > figures["clientWidth"] + 1
        visit.columns_hidden = figures["resultsHidden"]
        links = self.page.evaluate(ADMIN_LINKS)
        directory = TOUR / self.role / str(width)
        directory.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=directory / f"{slug(name)}.png")
        visit.console_errors = list(self.console)
        visit.csp = self.csp_violations[csp_before:]
        return visit, links

    def first_result(self, changelist: str) -> str | None:
        """The first object's change link in the list on screen (the store scoping applies)."""
        prefix = urlsplit(changelist).path
        for href in self.page.evaluate(
            "() => Array.from(document.querySelectorAll('#result_list tbody tr a[href]'), (a) => a.href)"
        ):
            rest = urlsplit(href).path[len(prefix) :]
            if urlsplit(href).path.startswith(prefix) and re.fullmatch(r"[^/]+/change/", rest):
                return href
        return None


def discover_and_visit(tour: Tour, user, width: int) -> list[Visit]:
    """Visit the landing page, every reachable list, add and first change page, then
    every admin GET page those link to (one per URL pattern), at ``width``."""
    seen: set[str] = set()
    visits: list[Visit] = []
    later: list[tuple[str, str]] = []

    def go(url: str, linked_from: str = "") -> Visit | None:
        key = page_key(url)[0]
        if key in seen or skipped(url):
            return None
        seen.add(key)
        visit, links = tour.visit(url, width, linked_from)
        visits.append(visit)
        later.extend((link, urlsplit(url).path) for link in links)
        return visit

    go("/admin/")
    for changelist, add in reachable_models(user):
        visit = go(changelist)
        if visit and visit.status == 200:
            first = tour.first_result(changelist)
            if first:
                go(first)
        if add:
            go(add)
    while later:
        go(*later.pop(0))
    return visits


@pytest.fixture
def demo_staff(live_server):
    """The demo data in the test database (committed: the live server sees it) and its
    staff users, each with the tests' password."""
    with override_settings(DEBUG=True):
        call_command("seed_demo", stdout=StringIO())
    users = list(StaffUser.objects.filter(totpdevice__confirmed=True).distinct().order_by("username"))
    if only := os.environ.get("TOUR_USERS"):
        users = [u for u in users if u.username in only.split(",")]
    for user in users:
        user.set_password(PASSWORD)
        user.save(update_fields=["password"])
    return users


def print_table(role: str, visits: list[Visit]) -> None:
    by_page: dict[str, dict[int, Visit]] = {}
    for v in visits:
        by_page.setdefault(v.page, {})[v.width] = v
    heads = [f"{w} px: status, server ms, load ms" for w in WIDTHS]
    width = max(len(p) for p in by_page) if by_page else 10
    print(f"\n{role}: {len(by_page)} pages")
    print(f"  {'page'.ljust(width)}  " + "   ".join(heads))
    for name, at in by_page.items():
        cells = []
        for w in WIDTHS:
            v = at.get(w)
            cells.append(f"{v.status:>3} {v.server_ms:>7.0f} {v.load_ms:>7.0f}" if v else "  -")
        print(f"  {name.ljust(width)}  " + "   ".join(c.ljust(len(h)) for c, h in zip(cells, heads, strict=True)))


def test_tour_of_every_admin_page_of_every_role(browser, live_server, csp_violations, demo_staff):
    if not os.environ.get("TOUR_USERS"):
        assert {u.username for u in demo_staff} >= {"cashier", "manager", "progadmin", "sysadmin", "fraud"}
    all_visits: list[Visit] = []
    for user in demo_staff:
        context, page = open_page(
            browser, live_server.url, csp_violations, viewport={"width": WIDTHS[0], "height": HEIGHT}
        )
        shutil.rmtree(TOUR / user.username, ignore_errors=True)  # no screenshots of an earlier run
        try:
            log_in(page, user)
            tour = Tour(page, csp_violations, user.username)
            visits = discover_and_visit(tour, user, WIDTHS[0])
            # The same pages at tablet width, in the same signed-in context.
            page.set_viewport_size({"width": WIDTHS[1], "height": HEIGHT})
            visits += [tour.visit(v.url, WIDTHS[1], v.linked_from)[0] for v in list(visits)]
        finally:
            context.close()
        for v in visits:
            v.role = user.username
        print_table(user.username, visits)
        all_visits += visits

    loads = [v.load_ms for v in all_visits if v.status == 200]
    servers = [v.server_ms for v in all_visits if v.status == 200]
    add_figure("tour: page loads", len(all_visits))
    add_figure("tour: median page load ms", round(statistics.median(loads)))
    add_figure("tour: max page load ms", round(max(loads)))
    add_figure("tour: median server ms", round(statistics.median(servers)))
    add_figure("tour: max server ms", round(max(servers)))
    slow = sorted((v for v in all_visits if v.load_ms >= 300), key=lambda v: -v.load_ms)
    print(f"\npages loading in 300 ms or more: {len(slow)}")
    for v in slow:
        print(f"  {v.load_ms:.0f} ms (server {v.server_ms:.0f}) {v.page} at {v.width} px: {v.url}")

    failures: dict[tuple[str, str], list[str]] = {}
    for v in all_visits:
        for where, what, width in v.failures():
            failures.setdefault((where, what), []).append(width)
    print(f"\nfailures: {len(failures)}")
    for (where, what), widths in failures.items():
        print(f"  {where} at {'+'.join(widths)} px: {what}")
    assert failures == {}

"""The roles table and its application to groups."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command

from staffauth.roles import README_TABLE_END, README_TABLE_START, ROLES, apply_roles, permissions_markdown

pytestmark = pytest.mark.django_db


def test_migrations_created_the_five_roles_with_exactly_their_permissions():
    for role in ROLES.values():
        group = Group.objects.get(name=role.name)
        granted = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
        assert granted == set(role.permissions), role.name


def test_store_scope_follows_the_spec():
    scoped = {key for key, role in ROLES.items() if role.store_scoped}
    assert scoped == {"cashier", "store_manager"}


def test_store_manager_has_every_cashier_permission():
    assert ROLES["cashier"].permissions <= ROLES["store_manager"].permissions


def test_no_role_may_change_roles_or_hand_out_permissions():
    forbidden = {"auth.add_group", "auth.change_group", "auth.delete_group", "auth.change_permission"}
    for role in ROLES.values():
        assert not role.permissions & forbidden, role.name


def test_apply_roles_is_idempotent_and_reports_unknown_permissions():
    first = apply_roles(Group=Group, Permission=Permission)
    second = apply_roles(Group=Group, Permission=Permission)
    assert first == second and Group.objects.count() == 5
    Permission.objects.filter(codename="end_sessions").delete()
    with pytest.raises(LookupError, match="staffauth.end_sessions"):
        apply_roles(Group=Group, Permission=Permission)


# --- the README's roles section agrees with the code (issue 11) -----------------------------


def _readme_roles_section() -> str:
    readme = (Path(settings.BASE_DIR) / "README.md").read_text(encoding="utf-8")
    return readme.split("\n## Roles\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_permissions_table_is_generated_from_the_roles():
    section = _readme_roles_section()
    assert README_TABLE_START in section and README_TABLE_END in section, "the README lost its permissions table"
    table = section.split(README_TABLE_START, 1)[1].split(README_TABLE_END, 1)[0].strip()
    assert table == permissions_markdown(), (
        "README.md's permissions table and staffauth/roles.py differ: decide against the spec, then paste "
        "the output of `python manage.py sync_roles --table` into the README"
    )


def test_the_generated_table_lists_every_permission_of_every_role():
    rows = {
        row.split("|")[1].strip(" `"): [cell.strip() for cell in row.split("|")[2:-1]]
        for row in permissions_markdown().splitlines()[2:]
    }
    for column, role in enumerate(ROLES.values()):
        listed = set()
        for obj, cells in rows.items():
            app_label, name = obj.split(".", 1)
            listed |= {f"{app_label}.{action}_{name}" for action in cells[column].split(", ") if action}
        assert listed == set(role.permissions), role.name


def test_the_readme_roles_table_names_each_role_and_its_scope():
    rows = re.findall(r"^\| ([A-Z][A-Za-z ]+) \| .+ \| (own stores|all stores) \|$", _readme_roles_section(), re.M)
    assert dict(rows) == {role.name: "own stores" if role.store_scoped else "all stores" for role in ROLES.values()}


def test_sync_roles_prints_the_table(capsys):
    call_command("sync_roles", "--table")
    out = capsys.readouterr().out
    assert out.startswith(README_TABLE_START) and permissions_markdown() in out
    assert Group.objects.count() == 5  # printing applies nothing new


def test_the_role_page_lists_its_permissions_grouped_by_area_and_record_type(verified_client, staff_by_role):
    from django.urls import reverse

    role = Group.objects.get(name=ROLES["system_admin"].name)
    page = verified_client(staff_by_role["system_admin"]).get(reverse("admin:auth_group_change", args=[role.pk]))

    html = page.content.decode()
    listing = html[html.index('id="role-permissions"') :]
    listing = listing[: listing.index("</dl>")]
    # one area per <dt>, each record type with its permissions' labels
    assert "<dt>Staff and security</dt>" in listing or "<dt>Staffauth</dt>" in listing, listing[:500]
    assert "<li><strong>Staff users</strong>: Can add staff user; Can change staff user;" in listing
    assert "<strong>Periodic tasks</strong>" in listing
    # not the stock run-on paragraph of "app | model | permission" strings
    assert "staffauth | staff user | Can add staff user" not in html

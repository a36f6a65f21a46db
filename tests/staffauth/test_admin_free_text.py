"""Issue 11 (D5, smaller findings): every admin form refuses, in every free-text field, a
card number, a bidi control and an invisible character, each with its own code.

One mechanism (``staffauth.admin_base``): ``FreeTextAdminMixin`` guards every form a
ModelAdmin builds and ``FreeTextFormMixin`` the forms outside one. The walks below fail
when an admin or a form is added without it.
"""

from __future__ import annotations

import importlib
import uuid

import pytest
from django import forms
from django.contrib import admin
from django.test import Client, RequestFactory
from django.urls import reverse

from members.services.membership import member_create
from tests.conftest import login_verified
from vouchers.models import Reward, Voucher

pytestmark = pytest.mark.django_db

PROJECT_APPS = ("loyalty", "members", "vouchers", "staffauth", "fraud", "compliance")
ADMIN_MODULES = [
    "loyalty.ledger.admin", "loyalty.adjustments.admin", "loyalty.adjustments.admin_reports", "members.admin", "staffauth.admin",
    "staffauth.views", "vouchers.admin.rewards", "vouchers.admin.offline", "vouchers.admin.till", "fraud.admin.alerts",
    "fraud.admin.cases",
]  # fmt: skip
# Forms that are not guarded, and why.
EXEMPT_FORMS = {
    "staffauth.views.TokenForm": "a one-time code, checked and never stored",
    "staffauth.admin.StaffPasswordChangeForm": "passwords only (hashed, never stored as typed)",
}
PAN = "4111 1111 1111 1111"
REFUSALS = {
    f"card {PAN} exp 12/29": "card_number_refused",
    "４１１１１１１１１１１１１１１１": "card_number_refused",
    "Mug \u202eguM": "bidi_control_refused",
    "Mu\u200bg": "invisible_character_refused",
}


def _guarded(form: forms.BaseForm) -> list[str]:
    """The names of the form's free-text fields that have no guard."""
    from staffauth.admin_base import FreeTextValidator, is_free_text

    return [
        name
        for name, field in form.fields.items()
        if is_free_text(field) and not any(isinstance(v, FreeTextValidator) for v in field.validators)
    ]


def test_every_registered_admin_guards_its_forms(make_staff):
    from staffauth.admin_base import FreeTextAdminMixin, FreeTextFormMixin

    superuser = make_staff("walker", is_superuser=True)
    request = RequestFactory().get("/admin/")
    request.user = superuser
    unguarded = {}
    for model, model_admin in admin.site._registry.items():
        label = f"{model._meta.label} ({type(model_admin).__name__})"
        assert isinstance(model_admin, FreeTextAdminMixin), label
        assert issubclass(model_admin.action_form, FreeTextFormMixin), label
        form = model_admin.get_form(request)()
        if missing := _guarded(form):
            unguarded[label] = missing
        if model_admin.list_editable:
            assert issubclass(model_admin.get_changelist_form(request), FreeTextFormMixin), label
        for formset, _inline in model_admin.get_formsets_with_inlines(request):
            assert issubclass(formset.form, FreeTextFormMixin), label
    assert unguarded == {}


def _project_forms() -> list[type[forms.BaseForm]]:
    for module in ADMIN_MODULES:
        importlib.import_module(module)
    found, stack = [], [forms.Form]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__.split(".")[0] in PROJECT_APPS:
            found.append(cls)
    return found


def test_every_plain_form_of_the_product_is_guarded_or_exempt_with_a_reason():
    from staffauth.admin_base import FreeTextFormMixin

    forms_found = {f"{f.__module__}.{f.__qualname__}": f for f in _project_forms()}
    assert "vouchers.admin.rewards.GoodwillForm" in forms_found  # the walk finds the product's forms
    unguarded = [
        name
        for name, form in forms_found.items()
        if not issubclass(form, FreeTextFormMixin) and name not in EXEMPT_FORMS
    ]
    assert unguarded == []


@pytest.mark.parametrize("value", REFUSALS, ids=list(REFUSALS.values()))
def test_a_reward_name_or_description_holding_refused_text_is_not_saved(make_staff, value):
    client = login_verified(Client(), make_staff("catalogue", is_superuser=True))
    data = {
        "name": "RM10 off", "description": "", "active": "on", "kind": "fixed_value", "value_minor": "1000",
        "percent": "", "item": "", "valid_days": "30", "points_price": "1000", "min_tier": "1",
        "per_member_limit": "", "stock_remaining": "50", "available_from_0": "", "available_from_1": "",
        "available_until_0": "", "available_until_1": "",
    }  # fmt: skip
    for field in ("name", "description"):
        response = client.post(reverse("admin:vouchers_reward_add"), {**data, field: value})
        assert response.status_code == 200
        errors = response.context_data["adminform"].form.errors.as_data()
        assert [e.code for e in errors[field]] == [REFUSALS[value]]
    assert not Reward.objects.exists()
    assert client.post(reverse("admin:vouchers_reward_add"), data).status_code == 302  # ordinary text is saved


def test_a_goodwill_reason_holding_a_card_number_issues_nothing(staff_by_role, store_a):
    member = member_create(home_store=store_a, name="Someone", phone="+60 13-555 0999")
    reward = Reward.objects.create(name="Coffee", kind="free_item", item="Latte", points_price=10, valid_days=30)
    client = login_verified(Client(), staff_by_role["program_admin"])
    response = client.post(
        reverse("admin:vouchers_voucher_add"),
        {"submission": uuid.uuid4().hex, "loyalty_number": member.loyalty_number, "reward": reward.pk,
         "reason": f"paid with {PAN}"},
    )  # fmt: skip
    assert response.status_code == 200 and not Voucher.objects.exists()
    errors = response.context_data["adminform"].form.errors.as_data()
    assert [e.code for e in errors["reason"]] == ["card_number_refused"]

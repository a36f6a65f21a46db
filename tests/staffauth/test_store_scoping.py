"""Store-scoped roles see only their stores' objects, everywhere in the admin."""

import pytest
from django.urls import reverse

from loyalty.kernel.models import Store
from loyalty.kernel.scoping import scope_to_stores, stores_visible_to

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager_a(make_staff, store_a, store_b):
    return make_staff("manager.a", "store_manager", stores=[store_a])


@pytest.mark.parametrize("view", ["change", "history", "delete"])
def test_other_stores_objects_are_404(verified_client, manager_a, store_b, view):
    client = verified_client(manager_a)
    response = client.get(reverse(f"admin:loyalty_store_{view}", args=[store_b.pk]))
    assert response.status_code == 404


def test_a_store_that_does_not_exist_is_also_404(verified_client, manager_a):
    response = verified_client(manager_a).get(reverse("admin:loyalty_store_change", args=[999_999]))
    assert response.status_code == 404


def test_own_store_is_visible(verified_client, manager_a, store_a):
    client = verified_client(manager_a)
    assert client.get(reverse("admin:loyalty_store_change", args=[store_a.pk])).status_code == 200
    assert client.get(reverse("admin:loyalty_store_history", args=[store_a.pk])).status_code == 200


def test_changelist_lists_only_own_stores(verified_client, manager_a, store_a, store_b):
    response = verified_client(manager_a).get(reverse("admin:loyalty_store_changelist"))
    listed = list(response.context_data["cl"].result_list)
    assert listed == [store_a]
    assert store_b.name.encode() not in response.content


def test_changelist_filters_do_not_leak_other_regions(verified_client, manager_a, store_b):
    response = verified_client(manager_a).get(reverse("admin:loyalty_store_changelist"))
    assert store_b.region.encode() not in response.content


def test_changelist_search_cannot_reach_other_stores(verified_client, manager_a, store_b):
    response = verified_client(manager_a).get(reverse("admin:loyalty_store_changelist") + "?q=" + store_b.code)
    assert list(response.context_data["cl"].result_list) == []


def test_autocomplete_returns_only_own_stores(verified_client, manager_a, store_a, store_b):
    response = verified_client(manager_a).get(
        reverse("admin:autocomplete"),
        {"app_label": "staffauth", "model_name": "staffuser", "field_name": "stores", "term": ""},
    )
    assert response.status_code == 200
    assert [r["id"] for r in response.json()["results"]] == [str(store_a.pk)]


def test_program_admin_sees_every_store(verified_client, make_staff, store_a, store_b):
    admin_user = make_staff("hq", "program_admin")
    response = verified_client(admin_user).get(reverse("admin:loyalty_store_changelist"))
    assert set(response.context_data["cl"].result_list) == {store_a, store_b}


def test_removing_a_store_takes_effect_on_the_next_request(verified_client, manager_a, store_a):
    client = verified_client(manager_a)
    assert client.get(reverse("admin:loyalty_store_change", args=[store_a.pk])).status_code == 200
    manager_a.stores.clear()
    assert client.get(reverse("admin:loyalty_store_change", args=[store_a.pk])).status_code == 404


def test_scoping_helpers(manager_a, store_a, store_b, make_staff):
    assert list(stores_visible_to(manager_a)) == [store_a]
    assert list(scope_to_stores(Store.objects.all(), manager_a, store_field="pk")) == [store_a]
    inactive = make_staff("gone", "program_admin", is_active=False)
    assert not stores_visible_to(inactive).exists()
    assert not stores_visible_to(None).exists()

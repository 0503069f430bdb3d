"""The dashboard's recommendation-set editor: choose linked recipients, order
them, set amounts per mode — through the same services as the API."""
from __future__ import annotations

import pytest
from django.test import Client

from organisations.models import Role
from recommendations.models import RecommendationSet
from tests.recommendations.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor(org):
    client = Client()
    client.force_login(make_user(org, Role.EDITOR))
    return client


def post(client, links, mode, picks, name="Climate split"):
    """picks: {link_index: (order, dollars)}"""
    data = {"name": name, "description": "", "amount_mode": mode}
    for index, (order, dollars) in picks.items():
        data[f"include-{links[index].id}"] = "on"
        data[f"position-{links[index].id}"] = str(order)
        data[f"amount-{links[index].id}"] = dollars
    return client.post("/engage/recommendation-sets/new", data)


def test_editor_lists_linked_recipients_in_the_frame(editor, links):
    page = editor.get("/engage/recommendation-sets/new")
    assert page.status_code == 200
    html = page.content.decode()
    for link in links:
        assert f'name="include-{link.id}"' in html
    assert "Switch to sandbox" in html  # the dashboard frame


def test_fixed_set_keeps_the_chosen_order(editor, org, links):
    response = post(editor, links, "FIXED", {0: (2, "100"), 2: (1, "250.50")})
    assert response.status_code == 302
    saved = RecommendationSet.objects.for_organisation(org).get()
    allocations = list(saved.allocations.order_by("position").values_list("link_id", "amount_cents"))
    assert allocations == [(links[2].id, 25050), (links[0].id, 10000)]
    assert response["Location"].endswith(f"/engage/recommendation-sets/{saved.id}/edit")
    page = editor.get(response["Location"])
    assert f"/give/{saved.id}" in page.content.decode()


def test_open_set_ignores_amounts_and_fixed_needs_them(editor, org, links):
    assert post(editor, links, "OPEN", {0: (1, "")}).status_code == 302
    assert RecommendationSet.objects.for_organisation(org).get().allocations.get().amount_cents == 0
    refused = post(editor, links, "FIXED", {1: (1, "")}, name="No amounts")
    assert refused.status_code == 400
    assert "greater than 0" in refused.content.decode()
    assert RecommendationSet.objects.for_organisation(org).count() == 1


def test_nothing_chosen_is_refused_and_stores_nothing(editor, org, links):
    response = post(editor, links, "FIXED", {})
    assert response.status_code == 400
    assert "at least one allocation" in response.content.decode()
    assert not RecommendationSet.objects.for_organisation(org).exists()


def test_edit_replaces_allocations(editor, org, links):
    post(editor, links, "FIXED", {0: (1, "10"), 1: (2, "20")})
    saved = RecommendationSet.objects.for_organisation(org).get()
    data = {"name": "Renamed", "description": "", "amount_mode": "SUGGESTED",
            f"include-{links[1].id}": "on", f"position-{links[1].id}": "1", f"amount-{links[1].id}": "30"}
    assert editor.post(f"/engage/recommendation-sets/{saved.id}/edit", data).status_code == 302
    saved.refresh_from_db()
    assert saved.name == "Renamed" and saved.amount_mode == "SUGGESTED"
    assert list(saved.allocations.values_list("link_id", "amount_cents")) == [(links[1].id, 3000)]


def test_viewer_cannot_open_the_editor_and_other_org_gets_404(org, other_org, links):
    viewer = Client()
    viewer.force_login(make_user(org, Role.VIEWER))
    assert viewer.get("/engage/recommendation-sets/new").status_code == 403
    outsider = Client()
    outsider.force_login(make_user(other_org, Role.ADMIN))
    editor = Client()
    editor.force_login(make_user(org, Role.EDITOR))
    post(editor, links, "FIXED", {0: (1, "10")})
    saved = RecommendationSet.objects.for_organisation(org).get()
    assert outsider.get(f"/engage/recommendation-sets/{saved.id}/edit").status_code == 404

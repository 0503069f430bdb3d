"""The staff admin: read-only lists whose actions go through the services."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from recommendations import services
from recommendations.models import Introduction, RecommendationSet
from tests.recommendations.conftest import SYSTEM, audit_actions

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("root@example.org", "root@example.org", "root-password-1")
    client.force_login(user)
    return client


def test_lists_open_and_actions_call_the_services(admin_client, org, links):
    intro = services.introduction_create(organisation=org, actor=SYSTEM, invitee_email="p@example.org").introduction
    the_set = services.recommendation_set_create(organisation=org, actor=SYSTEM, name="S", allocations=[
        {"recipient_org_account_link_id": links[0].id, "amount_cents": 100}])
    for path in ("distributionpassphrase", "recipientorgaccountlink", "introduction", "recommendationset", "splitgift"):
        assert admin_client.get(f"/admin/recommendations/{path}/").status_code == 200
    page = admin_client.get(f"/admin/recommendations/introduction/{intro.id}/change/").content.decode()
    assert intro.token_hash not in page
    admin_client.post("/admin/recommendations/introduction/", {"action": "revoke", "_selected_action": [intro.id]})
    assert Introduction.objects.get(pk=intro.id).status == "revoked"
    admin_client.post("/admin/recommendations/recommendationset/", {"action": "deactivate", "_selected_action": [the_set.id]})
    assert not RecommendationSet.objects.get(pk=the_set.id).is_active
    assert audit_actions(org)[-2:] == ["introduction.revoked", "recommendation_set.deleted"]
    assert admin_client.get("/admin/recommendations/recommendationset/add/").status_code == 403

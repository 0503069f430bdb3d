"""The demo step for `make run`: idempotent, through the services."""
from __future__ import annotations

import io

import pytest
from django.conf import settings

from recommendations.demo import demo_recommendations
from recommendations.models import RecipientOrgAccountLink, RecommendationSet
from together.demo import DemoContext

pytestmark = pytest.mark.django_db


def test_demo_step_links_partners_and_prints_the_giving_form_once(org):
    outputs = []
    for _ in range(2):
        ctx = DemoContext(stdout=io.StringIO(), organisation=org, sandbox=org.sandbox)
        demo_recommendations(ctx)
        outputs.append(ctx.lines)
    assert outputs[0] == outputs[1]
    the_set = RecommendationSet.objects.for_organisation(org).get()
    assert outputs[0] == [f"Demo giving form: {settings.SITE_URL}/give/{the_set.id}"]
    assert RecipientOrgAccountLink.objects.for_organisation(org).count() == 2
    assert the_set.allocations.count() == 2

"""Demo recommendations for `make run` (idempotent): two partner organisations
linked to the demo organisation through the real passphrase exchange, and one
SUGGESTED recommendation set whose public giving form URL is printed."""
from __future__ import annotations

from django.conf import settings

from organisations.models import Organisation
from organisations.services import organisation_create
from recommendations import services
from recommendations.models import AmountMode, RecipientOrgAccountLink, RecommendationSet
from together.demo import DemoContext, demo_step

PARTNERS = [("Coastal Climate Fund", "demo-coastal-climate", 15000), ("Forest Futures", "demo-forest-futures", 10000)]
SET_NAME = "Climate distribution - March 2026"


@demo_step(order=200, name="recommendations.sets")
def demo_recommendations(ctx: DemoContext) -> None:
    org, actor = ctx.organisation, ctx.actor
    links = []
    for name, slug, _ in PARTNERS:
        partner = Organisation.objects.filter(slug=slug).first() or organisation_create(name=name, slug=slug)
        link = RecipientOrgAccountLink.objects.for_organisation(org).filter(recipient_organisation=partner).first()
        if link is None:
            plaintext = services.distribution_passphrase_generate(organisation=partner, actor=actor).plaintext
            link = services.recipient_link_exchange(organisation=org, actor=actor, passphrase=plaintext, label=f"{name} main")
        links.append(link)
    the_set = RecommendationSet.objects.for_organisation(org).filter(name=SET_NAME, is_active=True).first()
    if the_set is None:
        the_set = services.recommendation_set_create(
            organisation=org, actor=actor, name=SET_NAME, amount_mode=AmountMode.SUGGESTED,
            description="One gift, shared between two climate groups.",
            allocations=[{"recipient_org_account_link_id": link.id, "amount_cents": cents}
                         for link, (_, _, cents) in zip(links, PARTNERS)])
    ctx.report(f"Demo giving form: {settings.SITE_URL}/give/{the_set.id}")

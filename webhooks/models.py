"""Events and their webhook deliveries: the transactional outbox.

`Event` is written in the transaction of the change it describes, with one
`WebhookDelivery` per matching endpoint; every try of a delivery is a
`WebhookAttempt` row. The database is the source of truth: Celery messages
only carry ids and may be lost, the sweep finds the rows again.
"""
from __future__ import annotations

import base64
import secrets
import time

from django.db import models
from django.db.models import Q
from django.utils import timezone

from together.exceptions import Conflict
from together.ids import ALPHABET, _base36
from together.models import LifecycleRules, OrganisationOwned, Refusal, organisation_key

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


_BASE32_TO_CROCKFORD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", CROCKFORD)


def new_delivery_id() -> str:
    """`dlv_` + a ULID: 48 bits of milliseconds and 80 random bits, Crockford base 32."""
    return new_delivery_ids(1)[0]


def new_delivery_ids(count: int) -> list[str]:
    """`count` delivery ids (new_delivery_id) of this millisecond, from one draw of
    random bytes: a gift's event offers 20 (webhooks.events._write)."""
    stamp, chars = int(time.time() * 1000), []
    for _ in range(10):  # the ULID's first 10 characters: the 48-bit time
        stamp, r = divmod(stamp, 32)
        chars.append(CROCKFORD[r])
    prefix = "dlv_" + "".join(reversed(chars))
    # 80 random bits are exactly 16 base-32 characters: each id's 10 bytes encode on their own.
    randomness = base64.b32encode(secrets.token_bytes(10 * count)).decode().translate(_BASE32_TO_CROCKFORD)
    return [prefix + randomness[16 * i:16 * (i + 1)] for i in range(count)]


def fast_id() -> str:
    """A cuid-style id like `together.ids.new_id` (c + 8 base-36 time characters + 15
    random ones), drawn from one random integer: attempts are written by the hundred."""
    value = secrets.randbits(78)
    rand = []
    for _ in range(15):
        value, r = divmod(value, 36)
        rand.append(ALPHABET[r])
    return "c" + _base36(int(time.time() * 1000), 8) + "".join(rand)


class Event(OrganisationOwned):
    """Something that happened to an organisation's data, as the API rendered it then."""

    organisation = organisation_key(db_index=False)  # the event_org_* indexes lead with it (together.models)
    type = models.CharField(max_length=80)
    occurred_at = models.DateTimeField()
    data = models.JSONField()

    class Meta:
        indexes = [
            models.Index(fields=["organisation", "-created_at", "-id"], name="event_org_created"),
            models.Index(fields=["organisation", "type", "-created_at"], name="event_org_type_created"),
            models.Index(fields=["created_at"], name="event_created"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class EndpointStatus(models.TextChoices):
    ENABLED = "ENABLED"
    DISABLED = "DISABLED"


class WebhookEndpoint(LifecycleRules, OrganisationOwned):
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=500, null=True, blank=True)
    enabled_events = models.JSONField(default=list)
    status = models.CharField(max_length=8, choices=EndpointStatus.choices, default=EndpointStatus.ENABLED)
    disabled_reason = models.CharField(max_length=300, null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    # The HMAC key is the secret's UTF-8 bytes (webhooks.md); it must be kept to sign.
    secret = models.CharField(max_length=100)
    previous_secret = models.CharField(max_length=100, null=True, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    # First failure since the last success; NULL while the endpoint succeeds.
    failing_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organisation", "-created_at", "-id"], name="endpoint_org_created")]

    def __str__(self) -> str:
        return self.url

    def accepts(self, event_type: str) -> bool:
        return "*" in self.enabled_events or event_type in self.enabled_events

    # --- lifecycle: ENABLED ⇄ DISABLED (by people, by 410 Gone, by 5 days of failures) ---

    lifecycle_actions = ("disable", "enable", "send")

    def _refusal_disable(self) -> Refusal | None:
        if self.status != EndpointStatus.ENABLED:
            return Refusal("The endpoint is already disabled.", param="status", error=Conflict)
        return None

    def _refusal_enable(self) -> Refusal | None:
        if self.status == EndpointStatus.ENABLED:
            return Refusal("The endpoint is already enabled.", param="status", error=Conflict)
        return None

    def _refusal_send(self) -> Refusal | None:
        """A test event, a retried delivery, any delivery at all."""
        if self.status != EndpointStatus.ENABLED:
            return Refusal("The endpoint is disabled; enable it before sending to it.", error=Conflict)
        return None

    @property
    def can_disable(self) -> bool:
        return self.can("disable")

    @property
    def can_enable(self) -> bool:
        return self.can("enable")

    @property
    def can_send(self) -> bool:
        return self.can("send")

    def health_record(self, *, now, any_success: bool, any_failure: bool) -> bool:
        """The failure streak: cleared by a success, started by a batch that only
        failed. Saves and returns True when it changed (the endpoint locked)."""
        if any_success and self.failing_since is not None:
            self.failing_since = None
        elif any_failure and not any_success and self.failing_since is None:
            self.failing_since = now
        else:
            return False
        self.save(update_fields=["failing_since", "updated_at"])
        return True


class DeliveryStatus(models.TextChoices):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class WebhookDelivery(LifecycleRules, OrganisationOwned):
    """One event to one endpoint. Its id is the `webhook-id` header, stable across retries."""

    id = models.CharField(max_length=30, primary_key=True, default=new_delivery_id, editable=False)
    # Indexed by delivery_endpoint_created and uniq_delivery_event_endpoint (together.models).
    organisation = organisation_key(db_index=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    status = models.CharField(max_length=9, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A claim: the worker holding `lease_token` owns the delivery until `leased_until`.
    # A worker killed mid-send leaves an expired lease, and the delivery is claimed again.
    leased_until = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=32, null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["organisation", "endpoint", "-created_at", "-id"], name="delivery_endpoint_created"),
            models.Index(fields=["endpoint", "next_attempt_at"], name="delivery_due",
                         condition=Q(status="PENDING")),
            models.Index(fields=["next_attempt_at"], name="delivery_sweep", condition=Q(status="PENDING")),
        ]
        constraints = [models.UniqueConstraint(fields=["event", "endpoint"], name="uniq_delivery_event_endpoint")]

    def __str__(self) -> str:
        return self.id

    lifecycle_actions = ("retry",)

    def _refusal_retry(self) -> Refusal | None:
        """Sent again (same `webhook-id`) only to an enabled endpoint, and not while an attempt is on the wire."""
        if self.endpoint.status != EndpointStatus.ENABLED:
            return Refusal("The endpoint is disabled; enable it before retrying its deliveries.", error=Conflict)
        if self.leased_until is not None and self.leased_until > timezone.now():
            return Refusal("The delivery is being sent right now; retry after this attempt.", error=Conflict)
        return None

    @property
    def can_retry(self) -> bool:
        return self.can("retry")


class WebhookAttempt(OrganisationOwned):
    """One HTTP try of a delivery (or a refusal before any byte was sent). The claim
    counts the attempt (`WebhookDelivery.attempt_count`) before the request goes
    out; a claim whose worker died before recording the answer becomes an
    "interrupted" attempt when the delivery is claimed again (webhooks/delivery.py)."""

    id = models.CharField(max_length=24, primary_key=True, default=fast_id, editable=False)
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    attempt_number = models.PositiveIntegerField()
    url = models.URLField(max_length=2000)
    succeeded = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(null=True, blank=True)
    error = models.CharField(max_length=500, null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["delivery", "attempt_number"], name="attempt_delivery")]

    def __str__(self) -> str:
        return f"{self.delivery_id} #{self.attempt_number}"

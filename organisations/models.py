from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from together.models import OrganisationOwned, PublicIdField, organisation_key

slug_validator = RegexValidator(r"^[a-z0-9]+(?:-[a-z0-9]+)*$", "Lower-case letters, digits and single hyphens.")


class Organisation(models.Model):
    id = PublicIdField()
    name = models.CharField(max_length=200)
    slug = models.CharField(max_length=80, unique=True, validators=[slug_validator])
    is_sandbox = models.BooleanField(default=False)
    live_organisation = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="sandbox"
    )
    currency = models.CharField(max_length=3, default="AUD")
    # Stripe Connect: the connected account (acct_…) that receives this
    # organisation's card gifts, set by an ADMIN in Settings → Payments. No form
    # or link takes payments until it is set (organisation_stripe_connect).
    stripe_account_id = models.CharField(max_length=255, null=True, blank=True)
    stripe_connected_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(is_sandbox=False, live_organisation__isnull=True)
                | models.Q(is_sandbox=True, live_organisation__isnull=False),
                name="sandbox_has_live_twin",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

    @property
    def live(self) -> "Organisation":
        return self.live_organisation if self.is_sandbox else self

    @property
    def stripe_connected(self) -> bool:
        """Takes card payments: a connected Stripe account is on file."""
        return bool(self.stripe_account_id) and self.stripe_connected_at is not None


class Role(models.TextChoices):
    ADMIN = "ADMIN", "Admin"
    EDITOR = "EDITOR", "Editor"
    VIEWER = "VIEWER", "Viewer"


# The one order of roles (dashboard, admin, API key pages): a role may do what
# any lower role may. No role ranks 0.
ROLE_RANK: dict[str, int] = {Role.VIEWER: 1, Role.EDITOR: 2, Role.ADMIN: 3}


def role_at_least(role: str | None, needed: str) -> bool:
    return ROLE_RANK.get(role, 0) >= ROLE_RANK[needed]


class Membership(models.Model):
    """A user's role in a live organisation; the same role applies on its sandbox."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.EDITOR)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organisation"], name="uniq_membership")]

    def __str__(self) -> str:
        return f"{self.user} → {self.organisation.slug} ({self.role})"


class Scope(models.TextChoices):
    READ = "READ", "Read"
    WRITE = "WRITE", "Write"


class ApiKey(OrganisationOwned):
    """An API key. Only a lookup prefix and a SHA-256 of the plaintext are kept."""

    name = models.CharField(max_length=100)
    scope = models.CharField(max_length=5, choices=Scope.choices)
    prefix = models.CharField(max_length=16, unique=True)
    hashed_key = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organisation", "-created_at"], name="apikey_org_created")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…, {self.scope})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @staticmethod
    def hash_plaintext(plaintext: str) -> str:
        """What `hashed_key` holds: SHA-256 of the whole key (`pc_…`), hex."""
        return hashlib.sha256(plaintext.encode()).hexdigest()


class AuditEntry(OrganisationOwned):
    """Who changed what, when, with the object before and after. Written by services."""

    organisation = organisation_key(db_index=False)  # the audit_* indexes lead with it (together.models)
    actor_type = models.CharField(max_length=10)  # USER, API_KEY, SYSTEM
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=200, blank=True)
    request_id = models.CharField(max_length=40, blank=True)
    action = models.CharField(max_length=80)
    object_type = models.CharField(max_length=60)
    object_id = models.CharField(max_length=64)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["organisation", "object_type", "object_id", "-created_at"], name="audit_object"),
            models.Index(fields=["organisation", "-created_at"], name="audit_org_created"),
        ]


class Invitation(models.Model):
    """An invitation to join a live organisation with a role, by a `/join/<token>` link."""

    id = PublicIdField()
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    full_name = models.CharField(max_length=200)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.EDITOR)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    @property
    def state(self) -> str:
        from django.utils import timezone

        if self.accepted_at:
            return "ACCEPTED"
        if self.revoked_at:
            return "REVOKED"
        if self.expires_at < timezone.now():
            return "EXPIRED"
        return "INVITED"

"""What every tenant model shares."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import models

from together.exceptions import ApplicationError, ValidationFailed
from together.ids import ID_LENGTH, new_id


class PublicIdField(models.CharField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", ID_LENGTH)
        kwargs.setdefault("default", new_id)
        kwargs.setdefault("editable", False)
        kwargs.setdefault("primary_key", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        for key in ("max_length", "default", "editable", "primary_key"):
            kwargs.pop(key, None)
        return name, "together.models.PublicIdField", args, kwargs


class OrganisationQuerySet(models.QuerySet):
    def for_organisation(self, organisation):
        return self.filter(organisation=organisation)


class OrganisationOwned(models.Model):
    """A tenant record: every query of it starts from its organisation."""

    id = PublicIdField()
    organisation = models.ForeignKey("organisations.Organisation", on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrganisationQuerySet.as_manager()

    class Meta:
        abstract = True


@dataclass(frozen=True)
class Refusal:
    """Why an action is not allowed on a record in its present state: the
    message people read, the field it is about, and the error a service raises."""

    message: str
    param: str | None = None
    error: type[ApplicationError] = ValidationFailed
    extra: dict[str, Any] = field(default_factory=dict)

    def raise_(self):
        raise self.error(self.message, param=self.param, **self.extra)


class LifecycleRules:
    """A model whose actions depend on its state. Each action `x` has a method
    `_refusal_x()` returning a `Refusal` or None; the model's `can_x` properties,
    the services' guards (`obj.check("x")`), the templates, the admin and the
    API all read the same method, so they can never disagree."""

    lifecycle_actions: tuple[str, ...] = ()

    def refusal_for(self, action: str) -> Refusal | None:
        return getattr(self, f"_refusal_{action}")()

    @property
    def refusals(self) -> dict[str, str]:
        """{action: why not} for each of `lifecycle_actions` refused now (for templates)."""
        out = {}
        for action in self.lifecycle_actions:
            refusal = self.refusal_for(action)
            if refusal is not None:
                out[action] = refusal.message
        return out

    def can(self, action: str) -> bool:
        return self.refusal_for(action) is None

    def check(self, action: str) -> None:
        """Raise the refusal's error when `action` is not allowed now (service guards)."""
        refusal = self.refusal_for(action)
        if refusal is not None:
            refusal.raise_()


class IdempotencyKey(models.Model):
    """A completed POST/PATCH, stored in the transaction of its effect."""

    organisation = models.ForeignKey("organisations.Organisation", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    status_code = models.PositiveSmallIntegerField()
    response_body = models.BinaryField()
    response_headers = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organisation", "key"], name="uniq_idempotency_key_per_org")]

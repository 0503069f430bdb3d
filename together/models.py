"""What every tenant model shares."""
from __future__ import annotations

import os
import re
import sys
from contextlib import contextmanager
from contextvars import ContextVar
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


# --- the second tenancy guard ----------------------------------------------------------
#
# The first guard is that every read starts from the organisation (the API's
# OrganisationViewSet.get_queryset, the dashboard's DashboardMixin.scoped). The
# second one catches what slips past it: while `tenant_guard()` is on (the test
# suite turns it on for the dashboard and API tests), running a query of a tenant
# model whose WHERE names no organisation fails loudly. A query is scoped when it
# filters on a foreign key to an organisation (`organisation`, `recipient_organisation`,
# across joins too) or on a foreign key to another tenant record (`donor=…`, a
# related manager such as `donor.donations`): that record was loaded scoped. A
# bare primary key, or no filter at all, is not. Platform-level reads that are
# meant to cross organisations say so by name: `Model.objects.unscoped("why")`.

_GUARD: ContextVar[bool] = ContextVar("together_tenant_guard", default=False)
PLATFORM_REASONS = (
    "admin superuser",      # the staff admin lists every organisation to a superuser
    "api key lookup",       # authentication finds the key before the organisation is known
    "celery sweep",         # beat's sweeps (webhooks, introductions, prunes) across all organisations
    "migration",            # data migrations
    "public page",          # a public page found by an unguessable id (giving form, invite token)
)


class UnscopedTenantQuery(AssertionError):
    """A tenant model was queried without naming its organisation (tenant_guard on)."""


@contextmanager
def tenant_guard(enabled: bool = True):
    """Fail any unscoped query of a tenant model run inside this block."""
    token = _GUARD.set(enabled)
    try:
        yield
    finally:
        _GUARD.reset(token)


def _scoping_field(field) -> bool:
    remote = getattr(field, "related_model", None)
    if remote is None or not getattr(field, "many_to_one", False) and not getattr(field, "one_to_one", False):
        return False
    label = remote._meta.label_lower
    return label == "organisations.organisation" or issubclass(remote, OrganisationOwned)


def _where_is_scoped(node, model) -> bool:
    for child in getattr(node, "children", ()):
        if hasattr(child, "children"):
            if getattr(child, "connector", "AND") == "AND" and not getattr(child, "negated", False) and _where_is_scoped(child, model):
                return True
            continue
        lhs = getattr(child, "lhs", None)
        target = getattr(lhs, "target", None)
        if target is None:
            continue
        if _scoping_field(target):
            return True
        if target.primary_key and target.model is not model and issubclass(target.model, OrganisationOwned):
            return True  # joined to a tenant record by its id (e.g. filter(donor__id=…)): parent-scoped
    return False


# The layer the guard polices: views, forms, serializers, API views, admin and the
# templates they render. Services and selectors take `organisation` as an argument
# and re-read rows they have just locked or written by primary key; a query made
# there (the innermost project frame) is theirs to scope, and their own tests do.
_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_SERVICE_LAYER = re.compile(
    r"(^|/)(services|selectors|representations|rules|delivery|events|queue|tasks|exporters|demo|idempotency)(\.py$|/)"
)


def _caller_is_service_layer() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        path = frame.f_code.co_filename
        if path.startswith(_PROJECT_ROOT) and "/.venv/" not in path and not path.endswith("together/models.py"):
            return bool(_SERVICE_LAYER.search(path[len(_PROJECT_ROOT):]))
        frame = frame.f_back
    return False


def check_scoped(queryset) -> None:
    if not _GUARD.get() or getattr(queryset, "_unscoped_reason", None):
        return
    where = queryset.query.where
    if getattr(where, "connector", "AND") != "AND" or where.negated or not _where_is_scoped(where, queryset.model):
        if _caller_is_service_layer():
            return
        raise UnscopedTenantQuery(
            f"Unscoped query of tenant model {queryset.model._meta.label}: start from the organisation "
            "(Model.objects.for_organisation(org), DashboardMixin.scoped(Model)), or name a platform reason "
            f"with .unscoped(reason). WHERE: {where!r}"
        )


class OrganisationQuerySet(models.QuerySet):
    _unscoped_reason: str | None = None

    def for_organisation(self, organisation):
        return self.filter(organisation=organisation)

    def unscoped(self, reason: str):
        """A platform-level query across organisations, on purpose (one of PLATFORM_REASONS)."""
        if reason not in PLATFORM_REASONS:
            raise ValueError(f"unscoped() needs one of {PLATFORM_REASONS}, not {reason!r}")
        clone = self._chain()
        clone._unscoped_reason = reason
        return clone

    def _clone(self):
        clone = super()._clone()
        clone._unscoped_reason = self._unscoped_reason
        return clone

    # Every way a query reaches the database passes the guard first.
    def _fetch_all(self):
        if self._result_cache is None:
            check_scoped(self)
        super()._fetch_all()

    def iterator(self, *args, **kwargs):
        check_scoped(self)
        return super().iterator(*args, **kwargs)

    def count(self):
        if self._result_cache is None:
            check_scoped(self)
        return super().count()

    def exists(self):
        if self._result_cache is None:
            check_scoped(self)
        return super().exists()

    def aggregate(self, *args, **kwargs):
        check_scoped(self)
        return super().aggregate(*args, **kwargs)

    def update(self, **kwargs):
        check_scoped(self)
        return super().update(**kwargs)

    def delete(self):
        check_scoped(self)
        return super().delete()


# --- the indexes of the tables every gift writes (issue 15) ------------------------------
#
# A gift's create inserts a donation, an audit entry, an event (and its deliveries),
# perhaps an aggregate and a rollup row, and rewrites its donor's row (whose totals
# are indexed, so every index takes the new version). Each index is one more insertion
# per write. Django gives every foreign key a one-column index, and every varchar key
# (our ids and the foreign keys to them) a second `varchar_pattern_ops` index for LIKE.
# On these tables neither serves a read: ids are opaque and never searched by prefix,
# the primary key answers equality, and where the tables' own indexes lead with a
# foreign key (the organisation on all of them, the donor, the campaign, the event)
# they answer its lookups, the foreign keys' checks and cascades included. So those
# foreign keys say `db_index=False`, and the migrations named `*_gift_write_indexes`
# drop the redundant indexes (concurrently); tests/records/test_write_indexes.py keeps
# them from coming back. On 1M gifts that was 8 of the donation table's 25 indexes and
# 4 of the donor's 17.


def organisation_key(*, db_index: bool = True) -> models.ForeignKey:
    """The foreign key of every tenant record to its organisation; `db_index=False` on
    the tables every gift writes, whose own indexes lead with it (see above)."""
    return models.ForeignKey("organisations.Organisation", on_delete=models.CASCADE, related_name="+",
                             db_index=db_index)


class OrganisationOwned(models.Model):
    """A tenant record: every query of it starts from its organisation."""

    id = PublicIdField()
    organisation = organisation_key()
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
    the services' guards (`obj.guard("x")`), the templates, the admin and the
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

    def guard(self, action: str) -> None:
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

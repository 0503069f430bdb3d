"""Tenancy in the staff admin, in one place.

Superusers see every organisation. Any other staff user sees only the records
of the organisations they are a member of (and those organisations' sandbox
twins, where the same role applies), in every list, search, filter choice,
autocomplete, form choice, object page, action and export. Another
organisation's object page behaves as a missing object (the admin redirects
with "doesn't exist").

`TenantAdminMixin` goes first in a ModelAdmin's bases:

    @admin.register(Donation)
    class DonationAdmin(TenantAdminMixin, ServiceAdmin): ...

It finds the model's way to its organisation (`organisation`, a foreign key
chain such as `batch__organisation`, or `tenant_path` set on the admin) and

- filters `get_queryset` (lists, object pages, actions, autocomplete, the
  raw-id and history views all start there) and `get_search_results`;
- limits foreign-key and many-to-many choices, and list-filter choices of
  related models, to the member's organisations (the `organisation` field of a
  form to those where the member may write);
- decides every permission from the user's Together role in the organisation
  concerned, never from Django's model permissions (see "Roles are the admin's
  rules" below).

Roles are the admin's rules. Every scoped ModelAdmin declares `object_kind`:

    "records"         donors, donations, campaigns, sets, exports...:
                      VIEWER views, EDITOR adds, changes and runs actions,
                      ADMIN deletes;
    "administration"  memberships, API keys, webhook endpoints, passphrases,
                      links, compliance settings, the organisation itself:
                      VIEWER views, only ADMIN adds, changes, deletes or acts.

An object page, a change, a delete and every object an action touches are
judged by the role in THAT object's organisation (a user may be ADMIN in one
organisation and VIEWER in another). Actions declare `allowed_permissions`
("view", "change", "delete", or "write": the kind's writing role even where the
change form is read-only); an action that declares nothing needs "write". The
selection an action receives is narrowed to the rows the role allows, plus any
object rule of the admin (`forbidden_queryset`/`is_forbidden`: nobody edits
their own membership). Superusers keep everything an admin offers; an admin
without a kind is treated as "administration" and named by the check.

A model that belongs to no organisation (the law's regime rules) is registered
with `tenant_global = "<reason>"`. At start-up `enforce_admin_tenancy` (called
from ReportsConfig.ready) re-registers any admin of a tenant model that forgot
the mixin with it, so that nothing can leak; `check_admin_tenancy` (a system
check, and a test) names those and any admin that is neither scoped nor global.
"""
from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path, reverse_field_path
from django.core import checks
from django.db import models

from organisations.models import ROLE_RANK, Membership, Organisation, role_at_least

_CACHE_ATTR = "_tenant_roles"


# --- who may see what --------------------------------------------------------------------------

def organisation_roles(request) -> dict[str, str] | None:
    """{organisation id: role} for a staff member's organisations and their
    sandbox twins; None for a superuser (every organisation)."""
    user = request.user
    if not (user.is_active and user.is_staff):
        return {}
    if user.is_superuser:
        return None
    cached = getattr(request, _CACHE_ATTR, None)
    if cached is not None:
        return cached
    roles: dict[str, str] = {}
    for organisation_id, role in Membership.objects.filter(user=user).values_list("organisation_id", "role"):
        if ROLE_RANK.get(role, 0) > ROLE_RANK.get(roles.get(organisation_id), 0):
            roles[organisation_id] = role
    for sandbox_id, live_id in Organisation.objects.filter(live_organisation_id__in=list(roles)).values_list("id", "live_organisation_id"):
        roles[sandbox_id] = roles[live_id]
    setattr(request, _CACHE_ATTR, roles)
    return roles


def organisation_ids(request, needed: str = "VIEWER") -> set[str] | None:
    roles = organisation_roles(request)
    if roles is None:
        return None
    return {org for org, role in roles.items() if role_at_least(role, needed)}


def may(request, organisation_id: str | None, needed: str = "VIEWER") -> bool:
    ids = organisation_ids(request, needed)
    return ids is None or (organisation_id is not None and organisation_id in ids)


# --- a model's way to its organisation ----------------------------------------------------------

def tenant_path(model, depth: int = 0) -> str | None:
    """The lookup path from `model` to its Organisation ('' for Organisation
    itself), or None when the model belongs to no organisation."""
    if model is Organisation:
        return ""
    if model is _user_model():
        return "memberships__organisation"
    fields = [f for f in model._meta.get_fields() if f.concrete and (f.many_to_one or f.one_to_one)]
    for f in fields:
        if f.related_model is Organisation and f.name == "organisation":
            return "organisation"
    for f in fields:
        if f.related_model is Organisation:
            return f.name
    if depth < 3:
        for f in fields:
            if f.related_model is None or f.related_model is model or getattr(f, "null", False):
                continue
            inner = tenant_path(f.related_model, depth + 1)
            if inner:
                return f"{f.name}__{inner}"
    return None


def _user_model():
    from django.contrib.auth import get_user_model

    return get_user_model()


def scope(queryset, request, path: str | None = None, needed: str = "VIEWER"):
    """`queryset` limited to the organisations the request's user may see."""
    path = tenant_path(queryset.model) if path is None else path
    if path is None:
        return queryset
    ids = organisation_ids(request, needed)
    if ids is None:
        return queryset
    lookup = f"{path}__in" if path else "pk__in"
    queryset = queryset.filter(**{lookup: ids})
    if "__" in path and path.startswith("memberships"):
        queryset = queryset.distinct()
    return queryset


def object_organisation_ids(obj, path: str) -> set[str]:
    """The organisation id(s) an object belongs to, following `path`."""
    if path == "":
        return {obj.pk}
    if path.startswith("memberships"):
        return set(obj.memberships.values_list("organisation_id", flat=True))
    target = obj
    parts = path.split("__")
    for part in parts[:-1]:
        target = getattr(target, part, None)
        if target is None:
            return set()
    value = getattr(target, f"{parts[-1]}_id", None)
    return {value} if value else set()


# --- list filters --------------------------------------------------------------------------------

class TenantRelatedFieldListFilter(admin.RelatedFieldListFilter):
    """A related-model list filter whose choices are the member's organisations'
    objects only (the organisations themselves for an `organisation` filter)."""

    def field_choices(self, field, request, model_admin):
        related = scope(field.related_model._default_manager.all(), request)
        if organisation_ids(request) is None:
            return super().field_choices(field, request, model_admin)
        ordering = self.field_admin_ordering(field, request, model_admin)
        return field.get_choices(include_blank=False, ordering=ordering, limit_choices_to={"pk__in": related.values("pk")})


class TenantAllValuesFieldListFilter(admin.AllValuesFieldListFilter):
    """Django's all-values filter reads a related model's values unscoped
    (`donor__state`): read them through the member's organisations."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        parent_model, _ = reverse_field_path(model, field_path)
        if parent_model is not model:
            queryset = scope(parent_model._default_manager.all(), request)
            self.lookup_choices = queryset.distinct().order_by(field.name).values_list(field.name, flat=True)


# --- the mixin ------------------------------------------------------------------------------------

class TenantAdminMixin:
    """Put first in the bases of every ModelAdmin of a tenant model."""

    tenant_path: str | None = None  # None: found from the model

    def get_tenant_path(self) -> str:
        path = self.tenant_path if self.tenant_path is not None else tenant_path(self.model)
        if path is None:
            raise TypeError(f"{self.model.__name__} has no way to an organisation: set tenant_path or tenant_global.")
        return path

    # -- rows
    def get_queryset(self, request):
        return scope(super().get_queryset(request), request, self.get_tenant_path())

    def get_search_results(self, request, queryset, search_term):
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        return scope(queryset, request, self.get_tenant_path()), may_have_duplicates

    # -- choices
    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "queryset" not in kwargs:
            queryset = self._choices(db_field, request)
            if queryset is not None:
                kwargs["queryset"] = queryset
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if "queryset" not in kwargs:
            queryset = self._choices(db_field, request)
            if queryset is not None:
                kwargs["queryset"] = queryset
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def _choices(self, db_field, request):
        related = db_field.related_model
        if organisation_ids(request) is None or tenant_path(related) is None:
            return None
        base = self.get_field_queryset(None, db_field, request)
        if base is None:
            base = related._default_manager.all()
        # The record's own organisation: only where the member's role may add or change this kind.
        needed = self.needed_role("change") if related is Organisation else "VIEWER"
        return scope(base, request, needed=needed)

    def get_list_filter(self, request):
        out = []
        for item in super().get_list_filter(request):
            if isinstance(item, str):
                try:
                    field = get_fields_from_path(self.model, item)[-1]
                except Exception:  # noqa: BLE001 - not a field path (a method): leave it to Django
                    field = None
                if field is not None and field.is_relation and tenant_path(field.related_model) is not None:
                    item = (item, TenantRelatedFieldListFilter)
                elif field is not None and "__" in item and not field.is_relation and not field.choices \
                        and not isinstance(field, (models.BooleanField, models.DateField)):
                    item = (item, TenantAllValuesFieldListFilter)
            elif isinstance(item, (tuple, list)) and len(item) == 2 and item[1] is admin.RelatedFieldListFilter:
                item = (item[0], TenantRelatedFieldListFilter)
            out.append(item)
        return out

    # -- permissions: the Together role in the organisation concerned
    object_kind: str | None = None  # "records" or "administration"; None counts as "administration"

    def needed_role(self, operation: str) -> str:
        kind = self.object_kind if self.object_kind in ROLE_NEEDED else "administration"
        return ROLE_NEEDED[kind][operation]

    def is_forbidden(self, request, obj, operation: str) -> bool:
        """An object rule on top of the role (override; keep `forbidden_queryset` in step)."""
        return False

    def forbidden_queryset(self, request, queryset, operation: str):
        """`queryset` without the rows `is_forbidden` refuses for `operation`."""
        return queryset

    def role_allows(self, request, obj, operation: str) -> bool:
        """The role's answer alone: superuser, or the needed role in the object's
        organisation (in any organisation when there is no object), and no object rule against it."""
        user = request.user
        if not (user.is_active and user.is_staff):
            return False
        if user.is_superuser:
            return True
        if not self._member(request, obj, self.needed_role(operation)):
            return False
        return obj is None or not self.is_forbidden(request, obj, operation)

    def _narrowed(self, name: str, request, *args) -> bool:
        """What a base class between this mixin and Django's ModelAdmin says
        (ServiceAdmin offers no delete, say); Django's own model-permission
        checks are skipped: the role decides."""
        mro = type(self).__mro__
        for klass in mro[mro.index(TenantAdminMixin) + 1:]:
            if klass.__module__.startswith("django.contrib.admin.") or klass is object:
                return True
            impl = vars(klass).get(name)
            if impl is not None:
                return impl(self, request, *args)
        return True

    def _member(self, request, obj, needed: str) -> bool:
        roles = organisation_roles(request)
        if roles is None:
            return True
        if obj is None:
            return any(role_at_least(role, needed) for role in roles.values())
        ids = object_organisation_ids(obj, self.get_tenant_path())
        return any(role_at_least(roles.get(i), needed) for i in ids)

    def has_module_permission(self, request):
        return self.role_allows(request, None, "view") and self._narrowed("has_module_permission", request)

    def has_view_permission(self, request, obj=None):
        return self.role_allows(request, obj, "view") and self._narrowed("has_view_permission", request, obj)

    def has_add_permission(self, request, *args):
        return self.role_allows(request, None, "add") and self._narrowed("has_add_permission", request, *args)

    def has_change_permission(self, request, obj=None):
        return self.role_allows(request, obj, "change") and self._narrowed("has_change_permission", request, obj)

    def has_delete_permission(self, request, obj=None):
        return self.role_allows(request, obj, "delete") and self._narrowed("has_delete_permission", request, obj)

    def has_write_permission(self, request, obj=None):
        """Runs the kind's state-changing actions (through the services), also
        where the change form is read-only."""
        return self.role_allows(request, obj, "write")

    # -- actions: offered by the role, and run only on the rows the role allows
    def get_actions(self, request):
        out = {}
        for name, (func, action_name, description) in super().get_actions(request).items():
            operations = tuple(getattr(func, "allowed_permissions", None) or ("write",))
            if not any(getattr(self, f"has_{op}_permission")(request) for op in operations):
                continue
            out[name] = (_guarded_action(func, operations), action_name, description)
        return out

    def action_queryset(self, request, queryset, operations):
        """The part of an action's selection whose organisation's role allows one of `operations`."""
        if organisation_roles(request) is None:
            return queryset
        allowed = None
        for op in operations:
            rows = self.forbidden_queryset(request, scope(queryset, request, self.get_tenant_path(), self.needed_role(op)), op)
            allowed = rows if allowed is None else (allowed | rows)
        return allowed


ROLE_NEEDED = {
    "records": {"view": "VIEWER", "add": "EDITOR", "change": "EDITOR", "write": "EDITOR", "delete": "ADMIN"},
    "administration": {"view": "VIEWER", "add": "ADMIN", "change": "ADMIN", "write": "ADMIN", "delete": "ADMIN"},
}
OBJECT_KINDS = tuple(ROLE_NEEDED)


def _guarded_action(func, operations):
    """`func`, run on the selection narrowed to what the role allows (a row of an
    organisation where the user's role is too low is left alone, and said so)."""
    import functools

    from django.contrib import messages

    @functools.wraps(func)
    def guarded(modeladmin, request, queryset):
        allowed = modeladmin.action_queryset(request, queryset, operations)
        if allowed is not queryset and operations != ("view",):
            skipped = queryset.count() - allowed.count()
            if skipped:
                modeladmin.message_user(
                    request, f"{skipped} selected row(s) were left alone: your role does not allow this on them.", messages.WARNING)
        return func(modeladmin, request, allowed)

    guarded.allowed_permissions = operations
    return guarded


class SuperuserOnlyAdminMixin:
    """For global records no organisation owns and only superusers may touch."""

    tenant_global = "superusers only"

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request, *args):
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser


# --- the check ------------------------------------------------------------------------------------

def unscoped_admins(site=None) -> list[str]:
    """Registered ModelAdmins that neither use TenantAdminMixin nor declare `tenant_global`."""
    site = site or admin.site
    out = []
    for model, model_admin in site._registry.items():
        if isinstance(model_admin, TenantAdminMixin) or getattr(model_admin, "tenant_global", None):
            continue
        out.append(f"{model._meta.label} ({type(model_admin).__module__}.{type(model_admin).__name__})")
    return sorted(out)


def enforce_admin_tenancy(site=None) -> list[str]:
    """The safety net, run once at start-up after every admin module is loaded:
    a registered ModelAdmin of a tenant model that forgot TenantAdminMixin is
    re-registered as a subclass with it (and named by `check_admin_tenancy`), so
    that no admin list ever shows another organisation's records."""
    site = site or admin.site
    wrapped = []
    for model, model_admin in list(site._registry.items()):
        if isinstance(model_admin, TenantAdminMixin) or getattr(model_admin, "tenant_global", None):
            continue
        if tenant_path(model) is None:
            continue
        cls = type(model_admin)
        scoped = type(f"Tenant{cls.__name__}", (TenantAdminMixin, cls), {"__module__": cls.__module__, "tenant_enforced": True})
        site.unregister(model)
        site.register(model, scoped)
        wrapped.append(f"{model._meta.label} ({cls.__module__}.{cls.__name__})")
    return wrapped


def check_admin_tenancy(app_configs=None, **kwargs):
    out = [
        checks.Warning(
            f"Admin for {label} is not tenant-scoped: staff members would see every organisation's records.",
            hint="Put organisations.admin_tenancy.TenantAdminMixin first in its bases, or set tenant_global = '<reason>'.",
            id="together.W010",
        )
        for label in unscoped_admins()
    ]
    for model, model_admin in admin.site._registry.items():
        if isinstance(model_admin, TenantAdminMixin) and model_admin.object_kind not in OBJECT_KINDS:
            out.append(checks.Warning(
                f"Admin for {model._meta.label} declares no object_kind: only ADMINs may change anything in it.",
                hint=f"Set object_kind to one of {', '.join(OBJECT_KINDS)} on {type(model_admin).__name__}.",
                id="together.W012",
            ))
        if getattr(model_admin, "tenant_enforced", False):
            out.append(checks.Warning(
                f"Admin for {model._meta.label} was scoped by the safety net at start-up.",
                hint="Put organisations.admin_tenancy.TenantAdminMixin first in its bases to make the tenancy explicit.",
                id="together.W011",
            ))
    return out


__all__ = [
    "OBJECT_KINDS", "ROLE_NEEDED", "ReadOnlyTenantAdmin", "TenantAdminMixin", "SuperuserOnlyAdminMixin", "TenantRelatedFieldListFilter",
    "check_admin_tenancy", "enforce_admin_tenancy", "may",
    "organisation_ids", "organisation_roles", "scope", "tenant_path", "unscoped_admins",
]


class ReadOnlyTenantAdmin(TenantAdminMixin, admin.ModelAdmin):
    """Records written only by the services (computed, audit, merge history):
    browsable and exportable by members, never added, changed or deleted here
    (changes are actions that call the services, by the kind's writing role)."""

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

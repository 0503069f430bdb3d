"""Staff admin for organisations, memberships, API keys and the audit log.

Memberships, keys and the organisation itself are "administration": members
read them, only an organisation's ADMINs change them, through the services
(audited, the last ADMIN kept), and nobody changes or removes their own
membership. Users and groups span organisations: changed by superusers only."""
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group

from organisations import services
from organisations.models import ApiKey, AuditEntry, Membership, Organisation
from together.admin import ServiceAdmin, ServiceForm
from organisations.admin_tenancy import ReadOnlyTenantAdmin, SuperuserOnlyAdminMixin, TenantAdminMixin
from together.exceptions import ApplicationError


@admin.register(Organisation)
class OrganisationAdmin(TenantAdminMixin, admin.ModelAdmin):
    object_kind = "administration"
    list_display = ["name", "slug", "is_sandbox", "live_organisation", "stripe_connected", "created_at"]
    list_filter = ["is_sandbox"]
    search_fields = ["name", "slug", "id", "stripe_account_id"]
    readonly_fields = ["id", "is_sandbox", "live_organisation", "stripe_connected_at", "created_at", "updated_at"]

    @admin.display(boolean=True, description="Stripe connected")
    def stripe_connected(self, obj):
        return obj.stripe_connected

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if "stripe_account_id" in form.base_fields:
            form.base_fields["stripe_account_id"].help_text = ("The connected Stripe account (acct_…) card gifts are paid "
                                                               "into; empty: not connected (no form or link takes payments).")
            original_clean = form.clean

            def clean(self_form):
                cleaned = original_clean(self_form)
                value = (cleaned.get("stripe_account_id") or "").strip()
                if value and not services.STRIPE_ACCOUNT_RE.fullmatch(value):
                    self_form.add_error("stripe_account_id", "A Stripe account id is acct_ followed by at least 6 letters or digits.")
                return cleaned

            form.clean = clean
        return form

    def save_model(self, request, obj, form, change):
        """The Stripe account changes through organisation_stripe_connect/disconnect (audited)."""
        wanted = (form.cleaned_data.get("stripe_account_id") or "").strip() if "stripe_account_id" in form.changed_data else None
        if wanted is not None and change:
            obj.stripe_account_id = form.initial.get("stripe_account_id")
        super().save_model(request, obj, form, change)
        if wanted is not None and change:
            if wanted:
                services.organisation_stripe_connect(organisation=obj, actor=request.actor, account_id=wanted)
            else:
                services.organisation_stripe_disconnect(organisation=obj, actor=request.actor)

    # An organisation (with its sandbox twin and first ADMIN) is made by organisation_create; deleting one
    # takes every record with it. Both are for superusers.
    def has_add_permission(self, request, *args):
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser


class MembershipForm(ServiceForm):
    class Meta:
        model = Membership
        fields = ["role"]

    def call_service(self, actor, data):
        return services.membership_change_role(organisation=self.instance.organisation, actor=actor,
                                               user_id=self.instance.user_id, role=data["role"])


@admin.register(Membership)
class MembershipAdmin(TenantAdminMixin, ServiceAdmin):
    """Roles change through membership_change_role; members join by invitation
    (Settings → Users) and leave by the "remove" action."""

    object_kind = "administration"
    form = MembershipForm
    list_display = ["user", "organisation", "role", "created_at"]
    list_filter = ["role", "organisation"]
    search_fields = ["user__email", "organisation__slug"]
    readonly_fields = ["user", "organisation", "created_at"]
    actions = ["remove"]

    def has_add_permission(self, request, *args):
        return False  # by invitation, so that the invitee accepts

    # Nobody raises their own role or changes or removes their own membership (a superuser is not bound).
    def is_forbidden(self, request, obj, operation):
        return operation != "view" and obj.user_id == request.user.pk and not request.user.is_superuser

    def forbidden_queryset(self, request, queryset, operation):
        if operation == "view" or request.user.is_superuser:
            return queryset
        return queryset.exclude(user=request.user)

    @admin.action(description="Remove the selected members from their organisation", permissions=["write"])
    def remove(self, request, queryset):
        done = 0
        for membership in queryset.select_related("organisation"):
            try:
                services.membership_remove(organisation=membership.organisation, actor=request.actor, user_id=membership.user_id)
                done += 1
            except ApplicationError as exc:
                self.message_user(request, f"{membership}: {exc.message}", messages.ERROR)
        self.message_user(request, f"Removed: {done}.")


@admin.register(ApiKey)
class ApiKeyAdmin(TenantAdminMixin, admin.ModelAdmin):
    """Keys are made in Settings → API (the plaintext shows once there) and revoked here or there."""

    object_kind = "administration"
    list_display = ["name", "prefix", "scope", "organisation", "created_by", "last_used_at", "revoked_at"]
    list_filter = ["scope", "organisation"]
    search_fields = ["name", "prefix"]
    exclude = ["hashed_key"]
    readonly_fields = [f.name for f in ApiKey._meta.fields if f.name != "hashed_key"]
    actions = ["revoke"]

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # nothing of a key is edited; it is revoked

    def has_delete_permission(self, request, obj=None):
        return False  # revoke: the row stays for the audit log

    @admin.action(description="Revoke the selected keys", permissions=["write"])
    def revoke(self, request, queryset):
        done = 0
        for key in queryset.filter(revoked_at__isnull=True).select_related("organisation"):
            services.api_key_revoke(organisation=key.organisation, actor=request.actor, api_key_id=key.id)
            done += 1
        self.message_user(request, f"Revoked: {done}.")


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyTenantAdmin):
    object_kind = "records"
    list_display = ["created_at", "action", "object_type", "object_id", "actor_label", "organisation"]
    list_filter = ["action", "actor_type", "organisation"]
    search_fields = ["object_id", "request_id", "actor_label"]
    readonly_fields = [f.name for f in AuditEntry._meta.fields]


# Users and groups span organisations: a staff member sees only the users who
# share an organisation with them; changing users and groups is for superusers.
User = get_user_model()
for _model in (User, Group):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(User)
class MemberUserAdmin(TenantAdminMixin, UserAdmin):
    object_kind = "administration"

    def has_add_permission(self, request, *args):
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser


@admin.register(Group)
class SuperuserGroupAdmin(SuperuserOnlyAdminMixin, GroupAdmin):
    pass

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group

from organisations.models import ApiKey, AuditEntry, Membership, Organisation
from together.admin_tenancy import ReadOnlyTenantAdmin, SuperuserOnlyAdminMixin, TenantAdminMixin


@admin.register(Organisation)
class OrganisationAdmin(TenantAdminMixin, admin.ModelAdmin):
    list_display = ["name", "slug", "is_sandbox", "live_organisation", "created_at"]
    list_filter = ["is_sandbox"]
    search_fields = ["name", "slug", "id"]
    readonly_fields = ["id", "is_sandbox", "live_organisation", "created_at", "updated_at"]


@admin.register(Membership)
class MembershipAdmin(TenantAdminMixin, admin.ModelAdmin):
    list_display = ["user", "organisation", "role", "created_at"]
    list_filter = ["role", "organisation"]
    search_fields = ["user__email", "organisation__slug"]


@admin.register(ApiKey)
class ApiKeyAdmin(TenantAdminMixin, admin.ModelAdmin):
    list_display = ["name", "prefix", "scope", "organisation", "created_by", "last_used_at", "revoked_at"]
    list_filter = ["scope", "organisation"]
    search_fields = ["name", "prefix"]
    readonly_fields = [f.name for f in ApiKey._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyTenantAdmin):
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
    def has_add_permission(self, request, *args):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(Group)
class SuperuserGroupAdmin(SuperuserOnlyAdminMixin, GroupAdmin):
    pass

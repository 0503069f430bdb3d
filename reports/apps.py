from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = "Reports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks

        from organisations.admin_tenancy import check_admin_tenancy, enforce_admin_tenancy

        # Every app's admin module is loaded by now (the admin's own ready() ran first).
        enforce_admin_tenancy()
        checks.register(check_admin_tenancy, checks.Tags.admin)

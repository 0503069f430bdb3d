from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = "Reports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks

        from together.admin_tenancy import check_admin_tenancy

        checks.register(check_admin_tenancy, checks.Tags.admin)

from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from organisations.services import AUDIT_LISTENERS
        from webhooks.events import audit_listener

        if audit_listener not in AUDIT_LISTENERS:
            AUDIT_LISTENERS.append(audit_listener)

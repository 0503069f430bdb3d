from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Payments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from donations.services import MERGE_HOOKS
        from payments.recurring import plans_follow_donor_merge

        if plans_follow_donor_merge not in MERGE_HOOKS:  # a donor's plans follow it into a merge
            MERGE_HOOKS.append(plans_follow_donor_merge)

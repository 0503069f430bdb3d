from django.apps import AppConfig


class ReceiptsConfig(AppConfig):
    name = "receipts"
    verbose_name = "Receipts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from donations.services import MERGE_HOOKS
        from receipts.services import receipts_follow_donor_merge

        if receipts_follow_donor_merge not in MERGE_HOOKS:  # a donor's receipts follow it into a merge
            MERGE_HOOKS.append(receipts_follow_donor_merge)

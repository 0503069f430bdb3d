"""Celery tasks of receipts: ids in, a service does the work. Enqueued by name
(together.celery.task_send), after the commit of the change that calls for them."""
from celery import shared_task

from organisations.models import Organisation
from receipts import services


def _organisation(organisation_id: str) -> Organisation | None:
    return Organisation.objects.filter(pk=organisation_id).first()


@shared_task(acks_late=True, ignore_result=True)
def receipt_email_task(organisation_id: str, receipt_id: str) -> bool:
    organisation = _organisation(organisation_id)
    return bool(organisation) and services.receipt_email_send(organisation=organisation, receipt_id=receipt_id)


@shared_task(acks_late=True, ignore_result=True)
def receipt_run_task(organisation_id: str, run_id: str) -> str | None:
    organisation = _organisation(organisation_id)
    if organisation is None:
        return None
    run = services.receipt_run_execute(organisation=organisation, run_id=run_id)
    return run.status if run else None


@shared_task(acks_late=True, ignore_result=True)
def receipts_sweep_task() -> int:
    """Every 5 minutes (CELERY_BEAT_SCHEDULE["receipts-sweep"])."""
    return services.receipts_sweep()


@shared_task(acks_late=True, ignore_result=True)
def receipt_sync_batch_task(organisation_id: str, donation_ids: list[str]) -> int:
    """Gifts changed in one transaction (donations.services enqueues this by name,
    batched per transaction): issue, correct or withdraw each one's receipt."""
    organisation = _organisation(organisation_id)
    if organisation is None:
        return 0
    return services.receipt_sync_many(organisation=organisation, donation_ids=donation_ids)

from celery import shared_task

from compliance.services import recompute_run


@shared_task(acks_late=True)
def compliance_recompute(recompute_id: str) -> dict:
    recompute = recompute_run(recompute_id=recompute_id)
    return {"id": recompute.id, "status": recompute.status, "donors_affected": recompute.donors_affected}

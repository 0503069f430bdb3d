from celery import shared_task

from imports.services import import_commit_run, import_plan_run, imports_resume_stalled


@shared_task(acks_late=True, ignore_result=True)
def import_plan_task(import_id: str) -> str | None:
    """The dry run of one import (ids in; the service does the work)."""
    job = import_plan_run(import_id=import_id)
    return job.status if job else None


@shared_task(acks_late=True, ignore_result=True)
def import_commit_task(import_id: str) -> str | None:
    """Write one committed import; a redelivered message continues where it stopped."""
    job = import_commit_run(import_id=import_id)
    return job.status if job else None


@shared_task(acks_late=True, ignore_result=True)
def imports_resume_stalled_task() -> int:
    """Every minute (CELERY_BEAT_SCHEDULE["imports-resume-stalled"]): resume imports whose worker died."""
    return imports_resume_stalled()

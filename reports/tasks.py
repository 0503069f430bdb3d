from celery import shared_task

from reports.services import export_job_run, export_jobs_prune


@shared_task(acks_late=True, ignore_result=True)
def export_job_run_task(job_id: str) -> str:
    """Build one export job's file (ids in; the service does the work)."""
    return export_job_run(job_id=job_id).status


@shared_task(acks_late=True, ignore_result=True)
def export_jobs_prune_task() -> int:
    """Hourly (CELERY_BEAT_SCHEDULE["reports-prune-exports"]): drop exports past their retention."""
    return export_jobs_prune()

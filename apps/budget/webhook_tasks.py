"""The Celery task that sends webhook deliveries (listed in CELERY_IMPORTS so workers load it).

Thin: it runs `webhooks.send_due_deliveries` and schedules its own next run — at once when a full
batch suggests more are due, or when the earliest retry it scheduled is due.
"""

from typing import Any

from celery import shared_task
from django.db import OperationalError

from apps.budget import webhooks


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    # Database unavailable: try again later; a receiver's failure is handled per delivery.
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=5,
    soft_time_limit=webhooks.CLAIM_BATCH * webhooks.TIMEOUT_SECONDS + 60,
    time_limit=webhooks.CLAIM_BATCH * webhooks.TIMEOUT_SECONDS + 120,
)
def send_webhooks() -> dict[str, Any]:
    report = webhooks.send_due_deliveries()
    if report.more_due:
        send_webhooks.delay()
    if report.retry_in is not None:
        # One second late, so that the retried rows are due when it runs.
        send_webhooks.apply_async(countdown=report.retry_in + 1)
    return report.as_dict()

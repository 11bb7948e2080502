"""The four periodic jobs (SPEC, "Periodic jobs") as thin Celery tasks.

Each calls one service, logs one INFO line and returns the service's report as a JSON-safe dict.
Beat sends them on the crontabs of `settings.CELERY_BEAT_SCHEDULE`; calling a function directly
(`reset_daily_budgets()`) runs the job synchronously in the caller's process.

Fault tolerance. Every service is one transaction of set-based conditional updates (a row changes
only while it still needs to), so a job run twice, or twice at once, changes nothing the second
time. That is what makes `acks_late` safe: the message is acknowledged only after the job, and a
job whose worker died is delivered again and simply runs again (the dead run's transaction was
rolled back, or it committed and the re-run finds nothing to do).
"""

import json
import logging
from typing import Any, TypedDict

from celery import shared_task
from django.db import InterfaceError, OperationalError

from apps.budget import services

logger = logging.getLogger(__name__)

JobSummary = dict[str, Any]


class JobOptions(TypedDict):
    """The Celery options every job shares (typed, so that mypy checks them against celery-types)."""

    acks_late: bool
    reject_on_worker_lost: bool
    autoretry_for: tuple[type[BaseException], ...]
    retry_backoff: int
    retry_backoff_max: int
    max_retries: int
    soft_time_limit: int
    time_limit: int


JOB_OPTIONS = JobOptions(
    # Acknowledge after the job: a worker lost mid-job leaves the message to be delivered again.
    acks_late=True,
    reject_on_worker_lost=True,
    # Only a database that is briefly unreachable (restart, failover, dropped connection, lock or
    # serialisation failure) is worth another try; a ValidationError or a bug fails at once.
    autoretry_for=(OperationalError, InterfaceError),
    # Waits of up to 5, 10, 20, 40, 80 seconds (full jitter), then the job fails: the next
    # scheduled run catches up anyway.
    retry_backoff=5,
    retry_backoff_max=120,
    max_retries=5,
    # A job is a few set-based statements; one still running after 4 minutes is stuck (a lock it
    # waits for, a runaway plan). The soft limit rolls its transaction back; the hard limit ends
    # the worker process if even that hangs. Both stay under the 5-minute check interval.
    soft_time_limit=4 * 60,
    time_limit=5 * 60,
)


def _finished(actor: str, report: services.JobReport) -> JobSummary:
    summary = report.as_dict()
    logger.info("%s finished: %s", actor, json.dumps(summary, sort_keys=True))
    return summary


@shared_task(name="apps.budget.tasks.reset_daily_budgets", **JOB_OPTIONS)
def reset_daily_budgets() -> JobSummary:
    """00:00 UTC daily: roll the daily aggregates over to the new day, then the rule for all."""
    actor = "job:reset_daily_budgets"
    return _finished(actor, services.reset_budgets(daily=True, monthly=False, actor=actor))


@shared_task(name="apps.budget.tasks.reset_monthly_budgets", **JOB_OPTIONS)
def reset_monthly_budgets() -> JobSummary:
    """00:00 UTC on the 1st: roll the monthly aggregates over to the new month, then the rule."""
    actor = "job:reset_monthly_budgets"
    return _finished(actor, services.reset_budgets(daily=False, monthly=True, actor=actor))


@shared_task(name="apps.budget.tasks.enforce_dayparting", **JOB_OPTIONS)
def enforce_dayparting() -> JobSummary:
    """Hourly at :00: the rule for campaigns with dayparting windows."""
    actor = "job:enforce_dayparting"
    return _finished(actor, services.enforce_dayparting(actor=actor))


@shared_task(name="apps.budget.tasks.check_campaign_budgets", **JOB_OPTIONS)
def check_campaign_budgets() -> JobSummary:
    """Every 5 minutes: repair the aggregates from the Spend rows, then the rule for all."""
    actor = "job:check_campaign_budgets"
    return _finished(actor, services.check_budgets(actor=actor))

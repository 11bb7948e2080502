"""The four periodic jobs as Celery tasks: what they change, and that they are safe to repeat.

These run the tasks in the test process (a direct call, or Celery's `apply()`, which runs the task
with its retry policy but no broker). `test_worker.py` runs them in a real worker.
"""

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from celery import Task
from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError
from freezegun import freeze_time

from apps.budget import services
from apps.budget.choices import CampaignStatus, PauseReason
from apps.budget.conftest import (
    CampaignFactory,
    DaypartingScheduleFactory,
    SpendFactory,
    day,
    run_concurrently,
)
from apps.budget.models import Campaign, CampaignStatusChange
from apps.budget.tasks import (
    check_campaign_budgets,
    enforce_dayparting,
    reset_daily_budgets,
    reset_monthly_budgets,
)

pytestmark = pytest.mark.django_db

JobTask = Task[[], dict[str, Any]]
JOBS = [reset_daily_budgets, reset_monthly_budgets, enforce_dayparting, check_campaign_budgets]
CHECK_INTERVAL_SECONDS = 5 * 60


def job_name(task: JobTask) -> str:
    return task.name.rsplit(".", 1)[-1]


def option(task: JobTask, name: str) -> Any:
    """A task option that celery-types does not declare (autoretry_for, retry_backoff, ...)."""
    return getattr(task, name)


def audit_rows(task: JobTask) -> int:
    return CampaignStatusChange.objects.filter(actor=f"job:{job_name(task)}").count()


# --- One situation per job, in which that job has exactly one campaign to change ---------------


@dataclass(frozen=True)
class Case:
    task: JobTask
    prepare: Callable[[], Campaign]  # run at `before`
    before: str
    at: str  # when the job runs
    expected: tuple[CampaignStatus, PauseReason]


def paused_by_daily_budget() -> Campaign:
    campaign = CampaignFactory.create(daily_budget=Decimal("100.00"))
    services.record_spend(campaign, Decimal("100.00"), day("2026-03-18"), 11)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.pause_reason) == (CampaignStatus.PAUSED, PauseReason.DAILY_BUDGET)
    return campaign


def paused_by_monthly_budget() -> Campaign:
    campaign = CampaignFactory.create(daily_budget=Decimal("5000.00"), monthly_budget=Decimal("2000.00"))
    services.record_spend(campaign, Decimal("2000.00"), day("2026-03-31"), 11)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.pause_reason) == (CampaignStatus.PAUSED, PauseReason.MONTHLY_BUDGET)
    return campaign


def in_office_hours() -> Campaign:
    """Runs Wednesdays 09:00-17:00 (2026-03-18 is a Wednesday)."""
    campaign = CampaignFactory.create()
    DaypartingScheduleFactory.create(campaign=campaign, day_of_week=2, start_hour=9, end_hour=17)
    return campaign


def with_uncounted_spend() -> Campaign:
    """Spend rows over the daily budget that the aggregates do not count (drift)."""
    campaign = CampaignFactory.create(daily_budget=Decimal("100.00"))
    SpendFactory.create_batch(2, campaign=campaign, amount=Decimal("60.00"), hour=9)
    return campaign


CASES = [
    pytest.param(
        Case(
            reset_daily_budgets,
            paused_by_daily_budget,
            "2026-03-18 12:00",
            "2026-03-19 00:00:05",
            (CampaignStatus.ACTIVE, PauseReason.NONE),
        ),
        id="reset_daily_budgets",
    ),
    pytest.param(
        Case(
            reset_monthly_budgets,
            paused_by_monthly_budget,
            "2026-03-31 12:00",
            "2026-04-01 00:00:05",
            (CampaignStatus.ACTIVE, PauseReason.NONE),
        ),
        id="reset_monthly_budgets",
    ),
    pytest.param(
        Case(
            enforce_dayparting,
            in_office_hours,
            "2026-03-18 16:30",
            "2026-03-18 17:00:05",
            (CampaignStatus.PAUSED, PauseReason.DAYPARTING),
        ),
        id="enforce_dayparting",
    ),
    pytest.param(
        Case(
            check_campaign_budgets,
            with_uncounted_spend,
            "2026-03-18 12:00",
            "2026-03-18 12:05:05",
            (CampaignStatus.PAUSED, PauseReason.DAILY_BUDGET),
        ),
        id="check_campaign_budgets",
    ),
]


def prepared(case: Case) -> Campaign:
    with freeze_time(case.before):
        return case.prepare()


def state(campaign: Campaign) -> tuple[str, str, Decimal, Decimal]:
    campaign.refresh_from_db()
    return campaign.status, campaign.pause_reason, campaign.daily_spend, campaign.monthly_spend


# --- Registration and policy ---------------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize("task", JOBS, ids=job_name)
def test_each_job_has_its_fixed_name_and_fault_tolerance_policy(task: JobTask) -> None:
    assert task.name == f"apps.budget.tasks.{job_name(task)}"
    assert job_name(task) in {
        "reset_daily_budgets",
        "reset_monthly_budgets",
        "enforce_dayparting",
        "check_campaign_budgets",
    }
    # Acknowledged only after the job; a message whose worker died is delivered again.
    assert task.acks_late is True
    assert task.reject_on_worker_lost is True
    # Retried only when the database is briefly unavailable, with growing waits and a cap.
    assert set(option(task, "autoretry_for")) == {OperationalError, InterfaceError}
    assert not issubclass(ValidationError, tuple(option(task, "autoretry_for")))
    assert option(task, "retry_backoff") > 0
    assert option(task, "retry_backoff_max") > 0
    assert task.max_retries is not None
    assert task.max_retries > 0
    # A time limit on every job: the soft one first (rolls back), within the 5-minute cycle.
    assert task.soft_time_limit is not None
    assert task.time_limit is not None
    assert 0 < task.soft_time_limit < task.time_limit <= CHECK_INTERVAL_SECONDS


# --- What each job does, once and only once --------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_a_direct_call_runs_the_job_and_returns_its_report(
    case: Case, caplog: pytest.LogCaptureFixture
) -> None:
    # given
    campaign = prepared(case)
    # when
    with freeze_time(case.at), caplog.at_level(logging.INFO, logger="apps.budget.tasks"):
        summary = case.task()
    # then
    assert state(campaign)[:2] == case.expected
    assert summary["status_changes"] == 1
    change = CampaignStatusChange.objects.get(campaign=campaign, actor=f"job:{job_name(case.task)}")
    assert (change.new_status, change.reason) == case.expected
    # One INFO line, "<actor> finished: <the summary as JSON>".
    [record] = [r for r in caplog.records if r.name == "apps.budget.tasks"]
    actor, _, logged = record.getMessage().partition(" finished: ")
    assert actor == f"job:{job_name(case.task)}"
    assert json.loads(logged) == summary


@pytest.mark.parametrize("case", CASES)
def test_a_job_run_twice_changes_nothing_the_second_time(case: Case) -> None:
    # The second run is also what a redelivered message does when a worker died after the job
    # committed but before it acknowledged the message (acks_late).
    campaign = prepared(case)
    with freeze_time(case.at):
        first = case.task.apply(task_id="job-1").get()
        after_first = state(campaign)
        second = case.task.apply(task_id="job-1").get()

    assert first["status_changes"] == 1
    assert second["status_changes"] == 0
    assert second["transitions"] == {}
    assert set(second["rolled"].values()) == {0}
    assert set(second["drift"].values()) == {0}
    assert state(campaign) == after_first
    assert audit_rows(case.task) == 1


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("task", JOBS, ids=job_name)
def test_two_runs_of_a_job_at_once_change_each_campaign_once(task: JobTask) -> None:
    # given: yesterday's spend paused 6 campaigns for their daily budget; today, in office hours,
    # they may run again (every job catches the missed reset up and applies the rule to them).
    with freeze_time("2026-03-18 12:00"):
        campaigns = [paused_by_daily_budget() for _ in range(6)]
    summaries: list[dict[str, Any]] = []
    # when
    with freeze_time("2026-03-19 10:00"):
        run_concurrently(lambda _index: summaries.append(task()), threads=2)
    # then: one run made all the changes, the other found nothing left to do.
    assert sorted(s["status_changes"] for s in summaries) == [0, len(campaigns)]
    assert audit_rows(task) == len(campaigns)
    assert {state(c)[:2] for c in campaigns} == {(CampaignStatus.ACTIVE, PauseReason.NONE)}


# --- A missed reset is caught up ---------------------------------------------------------------------


@pytest.mark.parametrize("task", [check_campaign_budgets, enforce_dayparting], ids=job_name)
def test_a_daily_reset_missed_at_midnight_is_caught_up_by_the_next_job(task: JobTask) -> None:
    # given: paused for its daily budget yesterday; beat was down at midnight, no reset ran
    with freeze_time("2026-03-18 12:00"):
        campaign = paused_by_daily_budget()
    with freeze_time("2026-03-19 00:20"):
        # when
        summary = task()
        # then: the aggregates now count today, and yesterday's spend no longer blocks
        assert summary["rolled"]["campaigns_daily"] == 1
        assert summary["rolled"]["brands_daily"] == 1
        assert state(campaign)[:3] == (CampaignStatus.ACTIVE, PauseReason.NONE, Decimal("0.00"))
        assert campaign.daily_spend_day == day("2026-03-19")
        assert campaign.monthly_spend == Decimal("100.00")
        services.record_spend(campaign, Decimal("99.99"), day("2026-03-19"), 0)
        assert state(campaign)[:3] == (CampaignStatus.ACTIVE, PauseReason.NONE, Decimal("99.99"))


@pytest.mark.parametrize("task", [check_campaign_budgets, enforce_dayparting], ids=job_name)
def test_a_monthly_reset_missed_on_the_first_is_caught_up_by_the_next_job(task: JobTask) -> None:
    with freeze_time("2026-03-31 12:00"):
        campaign = paused_by_monthly_budget()
    with freeze_time("2026-04-01 00:20"):
        summary = task()
        assert summary["rolled"]["campaigns_monthly"] == 1
        assert state(campaign) == (CampaignStatus.ACTIVE, PauseReason.NONE, Decimal("0.00"), Decimal("0.00"))
        assert campaign.monthly_spend_month == day("2026-04-01")
        services.record_spend(campaign, Decimal("1999.99"), day("2026-04-01"), 0)
        assert state(campaign)[:2] == (CampaignStatus.ACTIVE, PauseReason.NONE)


# --- Retries -----------------------------------------------------------------------------------------


class Flaky:
    """Stands in for a service; raises `error` on the first `failures` calls, then runs it.

    Making our own service raise OperationalError is how these tests take the database away for
    a moment; `test_worker.py` really refuses the worker's connections on PostgreSQL.
    """

    def __init__(self, service: Callable[..., services.JobReport], error: Exception, failures: int) -> None:
        self.service, self.error, self.failures, self.calls = service, error, failures, 0

    def __call__(self, **kwargs: Any) -> services.JobReport:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return self.service(**kwargs)


@pytest.fixture
def countdowns(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The wait before each retry of reset_daily_budgets, as its autoretry asks for it."""
    asked: list[float] = []
    retry = reset_daily_budgets.retry

    def spy(*args: Any, **kwargs: Any) -> Any:
        asked.append(kwargs["countdown"])
        return retry(*args, **kwargs)

    monkeypatch.setattr(reset_daily_budgets, "retry", spy)
    return asked


def test_a_briefly_unavailable_database_is_retried_and_the_job_then_succeeds(
    monkeypatch: pytest.MonkeyPatch, countdowns: list[float]
) -> None:
    with freeze_time("2026-03-18 12:00"):
        campaign = paused_by_daily_budget()
    flaky = Flaky(services.reset_budgets, OperationalError("server closed the connection unexpectedly"), 2)
    monkeypatch.setattr(services, "reset_budgets", flaky)

    with freeze_time("2026-03-19 00:00:05"):
        result = reset_daily_budgets.apply()

    assert result.successful()
    assert flaky.calls == 3
    assert result.get()["status_changes"] == 1
    assert state(campaign)[:2] == (CampaignStatus.ACTIVE, PauseReason.NONE)
    # Backoff with full jitter: up to 5 s before the first retry, up to 10 s before the second.
    assert len(countdowns) == 2
    assert 0 <= countdowns[0] <= 5
    assert 0 <= countdowns[1] <= 10


def test_retries_stop_at_the_cap(monkeypatch: pytest.MonkeyPatch, countdowns: list[float]) -> None:
    flaky = Flaky(services.reset_budgets, OperationalError("the database system is starting up"), 100)
    monkeypatch.setattr(services, "reset_budgets", flaky)

    result = reset_daily_budgets.apply()

    assert result.failed()
    assert isinstance(result.result, OperationalError)
    assert reset_daily_budgets.max_retries is not None
    assert flaky.calls == reset_daily_budgets.max_retries + 1
    assert max(countdowns) <= option(reset_daily_budgets, "retry_backoff_max")


def test_a_validation_error_is_never_retried(
    monkeypatch: pytest.MonkeyPatch, countdowns: list[float]
) -> None:
    flaky = Flaky(services.check_budgets, ValidationError({"campaign": "campaign 7 does not exist"}), 100)
    monkeypatch.setattr(services, "check_budgets", flaky)

    result = check_campaign_budgets.apply()

    assert result.failed()
    assert isinstance(result.result, ValidationError)
    assert flaky.calls == 1
    assert countdowns == []

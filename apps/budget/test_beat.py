"""The schedules: which jobs beat finds due at the edges of days, months and hours, and how they
get into django-celery-beat's tables (beat's start-up and `manage.py setup_schedules` agreeing).
"""

from datetime import datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command

# django-celery-beat ships no type information.
from django_celery_beat.models import CrontabSchedule, PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler
from freezegun import freeze_time

from budget_system.celery import app

# Committed rows, no test transaction around them: the scheduler, as in beat, closes the database
# connection between passes whenever it is inside a transaction (close_old_connections).
pytestmark = pytest.mark.django_db(transaction=True)

JOBS = {"reset_daily_budgets", "reset_monthly_budgets", "enforce_dayparting", "check_campaign_budgets"}
# The four budget jobs, and the webhook sender that runs every minute beside them.
SCHEDULES = len(JOBS) + 1
EVERY_DAY = {"reset_daily_budgets", "enforce_dayparting", "check_campaign_budgets"}
EVERY_HOUR = {"enforce_dayparting", "check_campaign_budgets"}


def moment(iso: str) -> datetime:
    return datetime.fromisoformat(f"{iso}+00:00")


def due_by_declared_crontabs(last_run_at: datetime, now: datetime) -> set[str]:
    """The crontabs of settings.CELERY_BEAT_SCHEDULE, asked as beat asks each entry."""
    with freeze_time(now):
        return {
            name
            for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
            if name in JOBS and entry["schedule"].is_due(last_run_at).is_due
        }


def due_by_database_scheduler(last_run_at: datetime, now: datetime) -> set[str]:
    """Beat's own DatabaseScheduler: rows upserted at start-up, read back, each entry asked."""
    with freeze_time(now):
        scheduler = DatabaseScheduler(app=app)
        due = set()
        for name, entry in scheduler.schedule.items():
            entry.last_run_at = last_run_at
            if scheduler.is_due(entry).is_due:
                due.add(name)
        return due


# Beat asks each entry "are you due, given you last ran at T?". A crontab's next run after T is the
# same for any T between its previous slot and `before`, so "last ran at `before`" stands for
# every job that ran on time until then.
EDGES = [
    pytest.param("2026-03-18 23:59", "2026-03-19 00:00", EVERY_DAY, id="midnight"),
    pytest.param("2026-01-31 23:59", "2026-02-01 00:00", JOBS, id="month-end-31"),
    pytest.param("2026-02-28 23:59", "2026-03-01 00:00", JOBS, id="month-end-february"),
    pytest.param("2026-12-31 23:59", "2027-01-01 00:00", JOBS, id="year-end"),
    pytest.param("2026-03-18 10:59", "2026-03-18 11:00", EVERY_HOUR, id="hour-turn"),
    pytest.param("2026-03-18 11:04", "2026-03-18 11:05", {"check_campaign_budgets"}, id="five-minutes"),
    pytest.param("2026-03-18 11:06", "2026-03-18 11:09:59", set(), id="between-slots"),
]


@pytest.mark.parametrize(("before", "at", "expected"), EDGES)
def test_which_jobs_become_due(before: str, at: str, expected: set[str]) -> None:
    last_run_at, now = moment(before), moment(at)
    # Nothing was due a minute earlier ...
    assert due_by_declared_crontabs(last_run_at - timedelta(minutes=1), last_run_at) == set()
    # ... and exactly these jobs are due at the edge, by the declared crontabs and by beat's
    # DatabaseScheduler reading them from the database.
    assert due_by_declared_crontabs(last_run_at, now) == expected
    assert due_by_database_scheduler(last_run_at, now) & JOBS == expected


def test_a_job_missed_while_beat_was_down_is_due_at_once_when_it_starts() -> None:
    # Beat down from 23:50 to 00:30: the midnight jobs are due as soon as it looks again.
    assert due_by_database_scheduler(moment("2026-03-31 23:50"), moment("2026-04-01 00:30")) & JOBS == JOBS


# --- Getting the schedules into the database -------------------------------------------------------


def setup_schedules(*args: str) -> str:
    out = StringIO()
    call_command("setup_schedules", *args, stdout=out)
    return out.getvalue()


def stored_schedules() -> dict[str, dict[str, Any]]:
    return {
        row["name"]: row
        for row in PeriodicTask.objects.filter(name__in=JOBS).values(
            "id",
            "name",
            "task",
            "enabled",
            "expire_seconds",
            "crontab_id",
            "crontab__minute",
            "crontab__hour",
            "crontab__day_of_month",
            "crontab__month_of_year",
            "crontab__day_of_week",
        )
    }


def test_setup_schedules_stores_the_four_jobs_in_utc() -> None:
    out = setup_schedules()

    assert f"{SCHEDULES} schedules: {SCHEDULES} created, 0 updated, 0 unchanged" in out
    assert "created: check_campaign_budgets: */5 * * * * (m/h/dM/MY/d) UTC" in out
    stored = stored_schedules()
    crontabs = {
        name: (
            row["crontab__minute"],
            row["crontab__hour"],
            row["crontab__day_of_month"],
            row["crontab__month_of_year"],
            row["crontab__day_of_week"],
        )
        for name, row in stored.items()
    }
    assert crontabs == {
        "reset_daily_budgets": ("0", "0", "*", "*", "*"),
        "reset_monthly_budgets": ("0", "0", "1", "*", "*"),
        "enforce_dayparting": ("0", "*", "*", "*", "*"),
        "check_campaign_budgets": ("*/5", "*", "*", "*", "*"),
    }
    assert {name: row["task"] for name, row in stored.items()} == {
        name: f"apps.budget.tasks.{name}" for name in JOBS
    }
    assert {str(c.timezone) for c in CrontabSchedule.objects.all()} == {"UTC"}
    # The frequent jobs expire after about 1.5 intervals; the resets do not expire.
    assert {name: row["expire_seconds"] for name, row in stored.items()} == {
        "reset_daily_budgets": None,
        "reset_monthly_budgets": None,
        "enforce_dayparting": 90 * 60,
        "check_campaign_budgets": 450,
    }
    assert all(row["enabled"] for row in stored.values())


def test_beat_sends_the_frequent_jobs_with_an_expiry() -> None:
    # A backlog (workers down for an hour) then runs each frequent job once, not once per slot.
    schedule = DatabaseScheduler(app=app).schedule

    assert schedule["check_campaign_budgets"].options["expires"] == 450
    assert schedule["enforce_dayparting"].options["expires"] == 90 * 60
    assert schedule["send_webhooks"].options["expires"] == 90


def test_beat_sends_pending_webhooks_every_minute() -> None:
    assert "send_webhooks" in due_by_database_scheduler(
        moment("2026-03-18 11:06"), moment("2026-03-18 11:07")
    )


def test_setup_schedules_run_again_changes_nothing() -> None:
    setup_schedules()
    stored, crontabs = stored_schedules(), CrontabSchedule.objects.count()

    out = setup_schedules()

    assert f"{SCHEDULES} schedules: 0 created, 0 updated, {SCHEDULES} unchanged" in out
    assert stored_schedules() == stored
    assert CrontabSchedule.objects.count() == crontabs == SCHEDULES
    assert PeriodicTask.objects.count() == SCHEDULES


def test_beat_start_up_and_setup_schedules_agree() -> None:
    # given: the command ran after migrate
    setup_schedules()
    stored = stored_schedules()
    # when: beat starts and upserts CELERY_BEAT_SCHEDULE itself
    DatabaseScheduler(app=app)
    # then: the same rows, untouched; and the command afterwards finds nothing to do
    assert stored_schedules() == stored
    assert f"0 created, 0 updated, {SCHEDULES} unchanged" in setup_schedules()


def test_beat_alone_creates_the_same_rows_as_the_command() -> None:
    # Beat started before anyone ran the command: the command then finds its own rows.
    DatabaseScheduler(app=app)
    assert set(stored_schedules()) == JOBS

    assert f"0 created, 0 updated, {SCHEDULES} unchanged" in setup_schedules()


def test_an_admin_edit_of_a_declared_schedule_is_restored_but_a_pause_is_kept() -> None:
    setup_schedules()
    edited = PeriodicTask.objects.get(name="check_campaign_budgets")
    edited.crontab = CrontabSchedule.objects.create(minute="*/10", timezone="UTC")
    edited.enabled = False
    edited.save()

    out = setup_schedules()

    assert "updated (crontab_id): check_campaign_budgets: */5 * * * * (m/h/dM/MY/d) UTC" in out
    restored = stored_schedules()["check_campaign_budgets"]
    assert restored["crontab__minute"] == "*/5"
    assert restored["enabled"] is False


def test_setup_schedules_dry_run_writes_nothing() -> None:
    out = setup_schedules("--dry-run")

    assert (
        f"{SCHEDULES} schedules: {SCHEDULES} created, 0 updated, 0 unchanged (dry run: nothing written)"
        in out
    )
    assert PeriodicTask.objects.count() == 0
    assert CrontabSchedule.objects.count() == 0

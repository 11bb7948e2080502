"""Real Celery processes: a worker and beat, on the real Redis broker and the test database.

Not eager mode: `celery -A budget_system worker` runs as a subprocess (prefork, one process),
consuming a queue of its own on its own Redis database (BUDGET_TEST_REDIS_URL, by default
redis://127.0.0.1:6379/5), so that it never takes messages from a developer's running worker. The
jobs are sent by name and their effect is read from the database.

PostgreSQL only: the worker must see the rows this process commits, and pytest-django's SQLite
test database lives in this process's memory. The suite's PostgreSQL pass runs these.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote
from uuid import uuid4

import psycopg
import pytest
import redis
from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded
from celery.result import AsyncResult
from django.conf import settings
from django.db import connection, transaction

# django-celery-beat ships no type information.
from django_celery_beat.models import PeriodicTask

from apps.budget.choices import CampaignStatus, PauseReason
from apps.budget.clock import month_start, utc_today
from apps.budget.conftest import CampaignFactory, DaypartingScheduleFactory, SpendFactory
from apps.budget.models import Brand, Campaign, CampaignStatusChange

pytestmark = [
    pytest.mark.worker,
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

REDIS_URL = os.environ.get("BUDGET_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")
TIMEOUT = 60.0  # seconds: the longest any wait below may take
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = TIMEOUT) -> T:
    """Poll `probe` until it returns something other than None (or fail after `timeout`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found is not None:
            return found
        time.sleep(0.2)
    raise AssertionError(f"gave up after {timeout:.0f}s waiting for {what}")


def worker_database_url() -> str:
    """DATABASE_URL of the database this test process uses (pytest-django's test database)."""
    db = settings.DATABASES["default"]
    user = quote(db["USER"] or "", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{user}{password}@{db['HOST'] or 'localhost'}{port}/{quote(db['NAME'], safe='')}"


@dataclass
class CeleryProcess:
    """A celery subprocess, its log, and a client app on the same broker."""

    process: "subprocess.Popen[bytes]"
    node: str
    log_path: Path
    client: Celery

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def ping(self) -> bool | None:
        """True once the process answers a remote-control ping."""
        if self.process.poll() is not None:
            raise AssertionError(f"{self.node} exited with {self.process.returncode}:\n{self.log()}")
        replies = self.client.control.ping(destination=[self.node], timeout=1.0) or []
        return True if any(self.node in reply for reply in replies) else None

    def stop(self) -> None:
        """Warm shutdown (SIGTERM), bounded; then SIGKILL to the whole process group."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def start_celery(kind: str, node_name: str, extra: list[str], log_path: Path) -> CeleryProcess:
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError as error:
        pytest.fail(f"the worker tests need Redis at {REDIS_URL} (BUDGET_TEST_REDIS_URL): {error}")
    env = {
        **os.environ,
        "DATABASE_URL": worker_database_url(),
        "CELERY_BROKER_URL": REDIS_URL,
        "CELERY_RESULT_BACKEND": REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "DJANGO_SETTINGS_MODULE": "budget_system.settings",
    }
    command = [sys.executable, "-m", "celery", "-A", "budget_system", kind, "--loglevel=INFO"]
    command += ["--hostname", f"{node_name}@%h", *extra]
    with log_path.open("wb") as log:
        # Its own process group, so that teardown can end the pool processes with it.
        process = subprocess.Popen(  # noqa: S603  # our own interpreter and arguments
            command,
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    client = Celery(f"{kind}-test-client", broker=REDIS_URL, backend=REDIS_URL)
    started = CeleryProcess(process, f"{node_name}@{socket.gethostname()}", log_path, client)
    try:
        wait_for(f"{kind} {started.node} to answer a ping", started.ping)
    except BaseException:
        started.stop()
        raise
    return started


@dataclass
class Worker:
    celery: CeleryProcess
    queue: str

    def send(self, job: str, **options: Any) -> "AsyncResult[Any]":
        return self.celery.client.send_task(f"apps.budget.tasks.{job}", queue=self.queue, **options)

    def run(self, job: str) -> dict[str, Any]:
        try:
            summary: dict[str, Any] = self.send(job).get(timeout=TIMEOUT)
        except Exception as error:
            raise AssertionError(
                f"{job} failed: {error!r}; worker log:\n{self.celery.log()[-5000:]}"
            ) from error
        return summary

    def active_pid(self, task_id: str, other_than: int | None = None) -> int | None:
        """The pool process running `task_id` now (a different one than `other_than`), if any."""
        inspect = self.celery.client.control.inspect(destination=[self.celery.node], timeout=1.0)
        for tasks in (inspect.active() or {}).values():
            for task in tasks:
                if task["id"] == task_id and task["worker_pid"] != other_than:
                    return task["worker_pid"]
        return None


@pytest.fixture(scope="module")
def worker(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    queue = f"budget-jobs-test-{uuid4().hex[:8]}"
    celery = start_celery(
        "worker",
        queue,
        [
            "--pool=prefork",
            "--concurrency=1",
            f"--queues={queue}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        tmp_path_factory.mktemp("worker") / "worker.log",
    )
    try:
        yield Worker(celery, queue)
    finally:
        celery.stop()
        # The queue and kombu's bindings for it; results expire by themselves.
        broker = redis.Redis.from_url(REDIS_URL)
        for key in [queue, *broker.scan_iter(match=f"_kombu.binding*.{queue}")]:
            broker.delete(key)


def status(campaign: Campaign) -> tuple[str, str]:
    campaign.refresh_from_db()
    return campaign.status, campaign.pause_reason


def audit_actors(campaign: Campaign) -> list[str]:
    return list(CampaignStatusChange.objects.filter(campaign=campaign).values_list("actor", flat=True))


def hold_every_brand() -> None:
    """Take the lock every job takes first, so that a job sent now waits inside its transaction."""
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {Brand._meta.db_table} IN EXCLUSIVE MODE")


def job_waiting_for_the_lock() -> bool | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE relation = %s::regclass AND NOT granted",
            [Brand._meta.db_table],
        )
        row = cursor.fetchone()
    return True if row and row[0] else None


# --- One situation per job, dated by the real clock (the worker does not share freezegun) -----------


def paused_since_yesterday() -> Campaign:
    """Paused for its daily budget by yesterday's spend; the daily reset has not run yet."""
    yesterday = utc_today() - timedelta(days=1)
    return CampaignFactory.create(
        status=CampaignStatus.PAUSED,
        pause_reason=PauseReason.DAILY_BUDGET,
        daily_spend=Decimal("100.00"),
        daily_spend_day=yesterday,
        monthly_spend=Decimal("100.00"),
        monthly_spend_month=month_start(yesterday),
    )


def paused_since_last_month() -> Campaign:
    last_month = month_start(month_start(utc_today()) - timedelta(days=1))
    return CampaignFactory.create(
        status=CampaignStatus.PAUSED,
        pause_reason=PauseReason.MONTHLY_BUDGET,
        monthly_spend=Decimal("2000.00"),
        monthly_spend_month=last_month,
    )


def outside_its_dayparting() -> Campaign:
    campaign = CampaignFactory.create()
    tomorrow = (utc_today().weekday() + 1) % 7
    DaypartingScheduleFactory.create(campaign=campaign, day_of_week=tomorrow, start_hour=0, end_hour=24)
    return campaign


def with_uncounted_spend() -> Campaign:
    campaign = CampaignFactory.create(daily_budget=Decimal("100.00"))
    SpendFactory.create_batch(2, campaign=campaign, amount=Decimal("60.00"), hour=0)
    return campaign


@pytest.mark.parametrize(
    ("job", "prepare", "expected"),
    [
        ("reset_daily_budgets", paused_since_yesterday, (CampaignStatus.ACTIVE, PauseReason.NONE)),
        ("reset_monthly_budgets", paused_since_last_month, (CampaignStatus.ACTIVE, PauseReason.NONE)),
        ("enforce_dayparting", outside_its_dayparting, (CampaignStatus.PAUSED, PauseReason.DAYPARTING)),
        ("check_campaign_budgets", with_uncounted_spend, (CampaignStatus.PAUSED, PauseReason.DAILY_BUDGET)),
    ],
)
def test_the_worker_runs_each_job_sent_by_name(
    worker: Worker, job: str, prepare: Callable[[], Campaign], expected: tuple[str, str]
) -> None:
    # given
    campaign = prepare()
    # when
    summary = worker.run(job)
    # then
    assert status(campaign) == expected
    assert audit_actors(campaign) == [f"job:{job}"]
    assert summary["status_changes"] == 1
    assert summary["today"] == utc_today().isoformat()
    assert f"job:{job} finished: " in worker.celery.log()


def test_the_check_repairs_a_drifted_aggregate(worker: Worker) -> None:
    campaign = with_uncounted_spend()

    summary = worker.run("check_campaign_budgets")

    campaign.refresh_from_db()
    assert campaign.daily_spend == campaign.monthly_spend == Decimal("120.00")
    assert summary["drift"] == {"campaigns": 1, "brands": 1}
    assert worker.run("check_campaign_budgets")["drift"] == {"campaigns": 0, "brands": 0}


def test_a_job_whose_worker_process_dies_mid_run_is_delivered_again_and_changes_once(
    worker: Worker,
) -> None:
    # A pool process killed (SIGKILL, as the kernel's OOM killer does) while the job waits inside
    # its transaction: acks_late + reject_on_worker_lost put the message back, a new pool
    # process runs the job again from the start, and the dead run's transaction left nothing.
    campaign = paused_since_yesterday()
    with transaction.atomic():
        hold_every_brand()
        result = worker.send("reset_daily_budgets")
        first = wait_for("the job to start", lambda: worker.active_pid(result.id))
        wait_for("the job to wait for the brand table", job_waiting_for_the_lock)
        os.kill(first, signal.SIGKILL)
        wait_for("the job to be delivered again", lambda: worker.active_pid(result.id, other_than=first))
        assert status(campaign) == (CampaignStatus.PAUSED, PauseReason.DAILY_BUDGET)
    # the lock is released: the second delivery completes
    summary = result.get(timeout=TIMEOUT)

    assert summary["status_changes"] == 1
    assert status(campaign) == (CampaignStatus.ACTIVE, PauseReason.NONE)
    assert audit_actors(campaign) == ["job:reset_daily_budgets"]
    assert "exited with 'signal 9 (SIGKILL)'" in worker.celery.log()
    # A worker lost after the job committed but before it acknowledged the message causes one more
    # delivery of a finished job: it finds nothing left to do.
    assert worker.run("reset_daily_budgets")["status_changes"] == 0
    assert audit_actors(campaign) == ["job:reset_daily_budgets"]


def allow_connections(allow: bool) -> None:
    """Open or close the test database to new connections (from the maintenance database: a
    database cannot close itself)."""
    db = settings.DATABASES["default"]
    name = connection.ops.quote_name(db["NAME"])
    with psycopg.connect(
        host=db["HOST"],
        port=db["PORT"] or None,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as maintenance:
        maintenance.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS {'true' if allow else 'false'}")


def test_a_job_retries_with_backoff_while_the_database_refuses_connections(worker: Worker) -> None:
    campaign = paused_since_yesterday()
    try:
        # given: the database refuses new connections, and the worker's are cut
        allow_connections(False)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        # when
        result = worker.send("reset_daily_budgets")
        # then: the job fails to connect and is scheduled again, not failed
        wait_for("the job to be retried", lambda: True if result.state == "RETRY" else None)
        assert status(campaign) == (CampaignStatus.PAUSED, PauseReason.DAILY_BUDGET)
    finally:
        allow_connections(True)
    # and once the database is back, a retry succeeds
    summary = result.get(timeout=TIMEOUT)
    assert summary["status_changes"] == 1
    assert status(campaign) == (CampaignStatus.ACTIVE, PauseReason.NONE)
    assert "retry: Retry in" in worker.celery.log()
    assert "OperationalError" in worker.celery.log()


def test_a_job_past_its_time_limit_is_stopped_and_leaves_nothing_half_done(worker: Worker) -> None:
    campaign = paused_since_yesterday()
    with transaction.atomic():
        hold_every_brand()
        # The job's own limits are minutes; this message asks for seconds, the worker enforces both.
        result = worker.send("reset_daily_budgets", soft_time_limit=1, time_limit=10)
        wait_for("the job to stop", lambda: True if result.ready() else None, timeout=30)

    assert result.state == "FAILURE"
    assert isinstance(result.result, SoftTimeLimitExceeded)
    assert status(campaign) == (CampaignStatus.PAUSED, PauseReason.DAILY_BUDGET)
    assert audit_actors(campaign) == []
    # The worker carries on with the next job.
    assert worker.run("reset_daily_budgets")["status_changes"] == 1


# --- Beat ------------------------------------------------------------------------------------------


@pytest.fixture
def beat(django_db_setup: None, tmp_path: Path) -> Iterator[CeleryProcess]:
    node_name = f"budget-beat-test-{uuid4().hex[:8]}"
    started = start_celery("beat", node_name, ["--enable-remote-control"], tmp_path / "beat.log")
    try:
        yield started
    finally:
        started.stop()
        # A job that fell due while beat ran went to the default queue of this Redis database.
        redis.Redis.from_url(REDIS_URL).delete("celery")


def test_beat_starts_with_the_four_schedules_in_its_log(beat: CeleryProcess) -> None:
    expected = {
        "reset_daily_budgets: 0 0 * * * (m/h/dM/MY/d) UTC -> apps.budget.tasks.reset_daily_budgets",
        "reset_monthly_budgets: 0 0 1 * * (m/h/dM/MY/d) UTC -> apps.budget.tasks.reset_monthly_budgets",
        "enforce_dayparting: 0 * * * * (m/h/dM/MY/d) UTC -> apps.budget.tasks.enforce_dayparting",
        "check_campaign_budgets: */5 * * * * (m/h/dM/MY/d) UTC -> apps.budget.tasks.check_campaign_budgets",
    }
    logged = {
        line.split("beat schedule: ", 1)[1] for line in beat.log().splitlines() if "beat schedule: " in line
    }
    assert expected <= logged
    assert "DatabaseScheduler" in beat.log()
    # It stored them in the database, where the admin shows them.
    assert set(PeriodicTask.objects.values_list("name", flat=True)) >= {
        "reset_daily_budgets",
        "reset_monthly_budgets",
        "enforce_dayparting",
        "check_campaign_budgets",
    }

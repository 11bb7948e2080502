"""Outbound status events, delivered to a real HTTP server on 127.0.0.1 started by the test."""

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import redis
from celery import Celery
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from freezegun import freeze_time

from apps.budget import services, webhooks
from apps.budget.choices import CampaignStatus
from apps.budget.conftest import BrandFactory, CampaignFactory
from apps.budget.ingestion import record_spend_batch
from apps.budget.models import (
    Campaign,
    CampaignStatusChange,
    DeliveryState,
    WebhookDelivery,
    WebhookEndpoint,
)
from apps.budget.webhook_tasks import send_webhooks
from budget_system.celery import app as celery_app

pytestmark = pytest.mark.django_db

SECRET = "test-shared-secret"  # noqa: S105 - the test receiver's fake secret
CaptureCallbacks = Callable[..., Any]


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def payload(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.body)
        return loaded


@dataclass
class Receiver:
    """What the local server got, and how it answers (status, extra headers, delay)."""

    url: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if state.delay:
                threading.Event().wait(state.delay)
            with state.lock:
                state.received.append(Received(dict(self.headers.items()), body))
            self.send_response(state.status)
            for name, value in state.headers.items():
                self.send_header(name, value)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the assertions say what arrived."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/budget"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def endpoint(receiver: Receiver) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(url=receiver.url, secret=SECRET)


@pytest.fixture
def eager_celery() -> Iterator[None]:
    """Tasks run in this process when queued (the worker test covers the real broker)."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def verified(received: Received) -> bool:
    return webhooks.verify_signature(
        SECRET,
        body=received.body,
        timestamp=received.headers["X-Budget-Timestamp"],
        signature=received.headers["X-Budget-Signature"],
        now=timezone.now(),
    )


# --- Signing -------------------------------------------------------------------------------------


def test_signature_covers_body_secret_and_timestamp() -> None:
    now = datetime(2026, 3, 18, 12, tzinfo=UTC)
    stamp = int(now.timestamp())
    body = b'{"id":1}'
    signature = webhooks.sign(SECRET, stamp, body)

    def check(**changes: Any) -> bool:
        arguments: dict[str, Any] = {
            "body": body,
            "timestamp": str(stamp),
            "signature": signature,
            "now": now,
        }
        arguments.update(changes)
        secret = arguments.pop("secret", SECRET)
        return webhooks.verify_signature(secret, **arguments)

    assert signature.startswith("sha256=")
    assert len(signature) == len("sha256=") + 64
    assert check()
    assert not check(body=b'{"id":2}')
    assert not check(secret="another secret")
    assert not check(timestamp=str(stamp + 1))  # the timestamp is signed too
    assert not check(now=now + timedelta(seconds=301))  # a replay after 5 minutes
    assert not check(timestamp="yesterday")


# --- Delivery ------------------------------------------------------------------------------------


def test_a_status_change_reaches_the_receiver_signed_once(
    receiver: Receiver, endpoint: WebhookEndpoint, campaign: Campaign
) -> None:
    # given: a person pauses the campaign, which queues one delivery
    services.pause_campaign(campaign)
    change = CampaignStatusChange.objects.get(campaign=campaign)
    assert WebhookDelivery.objects.get().state == DeliveryState.PENDING

    # when: the task runs, and runs again
    first = send_webhooks()
    second = send_webhooks()

    # then: one signed POST with the event
    assert (first["delivered"], second["delivered"]) == (1, 0)
    assert len(receiver.received) == 1
    received = receiver.received[0]
    assert verified(received)
    assert received.headers["Content-Type"] == "application/json"
    assert received.headers["X-Budget-Event-Id"] == str(change.pk)
    assert received.payload() == {
        "id": change.pk,
        "type": "campaign.status_changed",
        "campaign": {"id": campaign.pk, "name": campaign.name, "brand_id": campaign.brand_id},
        "old_status": "ACTIVE",
        "new_status": "PAUSED",
        "reason": "MANUAL",
        "actor": "system",
        "changed_at": change.changed_at.isoformat(),
    }
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.last_error) == (DeliveryState.DELIVERED, 1, "")
    assert delivery.delivered_at is not None


def test_sent_by_the_task_after_commit_and_never_for_a_rolled_back_change(
    receiver: Receiver,
    endpoint: WebhookEndpoint,
    campaign: Campaign,
    eager_celery: None,
    django_capture_on_commit_callbacks: CaptureCallbacks,
) -> None:
    def pause_then_fail() -> None:
        with transaction.atomic():
            services.pause_campaign(campaign)
            raise RuntimeError("the caller's transaction fails after the pause")

    with django_capture_on_commit_callbacks() as discarded, pytest.raises(RuntimeError):
        pause_then_fail()
    assert discarded == []
    assert not WebhookDelivery.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        services.pause_campaign(campaign)
        assert receiver.received == []  # nothing leaves before the commit

    assert [r.payload()["reason"] for r in receiver.received] == ["MANUAL"]
    assert WebhookDelivery.objects.get().state == DeliveryState.DELIVERED


def test_job_and_ingestion_changes_become_events_for_each_active_endpoint(
    frozen_now: datetime, receiver: Receiver, endpoint: WebhookEndpoint
) -> None:
    WebhookEndpoint.objects.create(url="http://127.0.0.1:9/never", secret="x", is_active=False)
    brand = BrandFactory.create(daily_budget=Decimal("100.00"))
    campaigns = CampaignFactory.create_batch(3, brand=brand, daily_budget=Decimal("500.00"))

    # an ingestion takes the brand to its budget: all three pause (set-based rule)
    record_spend_batch(
        [{"campaign_id": campaigns[0].pk, "amount": "100.00", "date": "2026-03-18", "hour": 9}],
        actor="api:platform",
    )
    # a person raises the brand budget: the rule brings them back (set-based too)
    brand.daily_budget = Decimal("1000.00")
    services.save_brand(brand)
    send_webhooks()

    events = sorted(
        (r.payload()["campaign"]["id"], r.payload()["new_status"], r.payload()["actor"])
        for r in receiver.received
    )
    assert events == sorted(
        [(c.pk, "PAUSED", "api:platform") for c in campaigns]
        + [(c.pk, "ACTIVE", "system") for c in campaigns]
    )
    assert all(verified(r) for r in receiver.received)
    assert WebhookDelivery.objects.filter(endpoint=endpoint, state=DeliveryState.DELIVERED).count() == 6
    assert WebhookDelivery.objects.count() == 6  # none for the inactive endpoint


def test_no_endpoint_means_no_delivery_and_no_task(
    campaign: Campaign, django_capture_on_commit_callbacks: CaptureCallbacks
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        services.pause_campaign(campaign)

    assert campaign.status_changes.count() == 1
    assert callbacks == []
    assert not WebhookDelivery.objects.exists()


def test_a_failing_receiver_is_retried_with_backoff_then_marked_failed(
    frozen_now: datetime, receiver: Receiver, endpoint: WebhookEndpoint, campaign: Campaign
) -> None:
    receiver.status = 500
    services.pause_campaign(campaign)

    report = webhooks.send_due_deliveries()

    delivery = WebhookDelivery.objects.get()
    assert (report.retrying, report.retry_in) == (1, 30)
    assert (delivery.state, delivery.attempts) == (DeliveryState.PENDING, 1)
    assert delivery.last_error.startswith("HTTP 500")
    assert delivery.next_attempt_at == timezone.now() + timedelta(seconds=30)
    assert webhooks.send_due_deliveries().retrying == 0  # not due yet: nothing sent

    waits = []
    for attempt in range(2, webhooks.MAX_ATTEMPTS + 1):
        due = WebhookDelivery.objects.get().next_attempt_at
        with freeze_time(due):
            webhooks.send_due_deliveries()
        delivery = WebhookDelivery.objects.get()
        assert delivery.attempts == attempt
        if delivery.state == DeliveryState.PENDING:
            waits.append((delivery.next_attempt_at - due).total_seconds())

    assert waits == [60, 120, 240, 480, 960, 1920]  # doubling after each failure
    assert delivery.state == DeliveryState.FAILED
    assert len(receiver.received) == webhooks.MAX_ATTEMPTS

    # a person sends it again from the admin: it goes out once the receiver is back
    receiver.status = 204
    assert webhooks.requeue_deliveries([delivery.pk]) == 1
    webhooks.send_due_deliveries()
    assert WebhookDelivery.objects.get().state == DeliveryState.DELIVERED


def test_a_redirect_is_a_failure_not_followed(
    receiver: Receiver, endpoint: WebhookEndpoint, campaign: Campaign
) -> None:
    receiver.status = 302
    receiver.headers = {"Location": "http://127.0.0.1:9/elsewhere"}
    services.pause_campaign(campaign)

    webhooks.send_due_deliveries()

    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.last_error[:8]) == (DeliveryState.PENDING, "HTTP 302")
    assert len(receiver.received) == 1


def test_an_unreachable_endpoint_is_a_recorded_failure(campaign: Campaign) -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused.
    WebhookEndpoint.objects.create(url="http://127.0.0.1:9/hooks", secret=SECRET)
    services.pause_campaign(campaign)

    report = webhooks.send_due_deliveries()

    delivery = WebhookDelivery.objects.get()
    assert report.retrying == 1
    assert delivery.state == DeliveryState.PENDING
    assert "refused" in delivery.last_error.lower()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_senders_at_once_send_each_event_once(receiver: Receiver, endpoint: WebhookEndpoint) -> None:
    brand = BrandFactory.create()
    campaigns = CampaignFactory.create_batch(20, brand=brand)
    brand.is_active = False
    services.save_brand(brand)  # 20 changes, 20 deliveries
    assert WebhookDelivery.objects.count() == 20
    receiver.delay = 0.02  # so that the two senders overlap
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def sender() -> None:
        try:
            barrier.wait()
            webhooks.send_due_deliveries(limit=5)
            while webhooks.send_due_deliveries(limit=5).more_due:
                pass
        except BaseException as error:  # noqa: BLE001 - re-raised in the test thread below
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    if failures:
        raise failures[0]
    event_ids = [r.headers["X-Budget-Event-Id"] for r in receiver.received]
    assert len(event_ids) == 20
    assert len(set(event_ids)) == 20
    assert WebhookDelivery.objects.filter(state=DeliveryState.DELIVERED, attempts=1).count() == 20
    assert {r.payload()["campaign"]["id"] for r in receiver.received} == {c.pk for c in campaigns}
    assert all(r.payload()["new_status"] == CampaignStatus.PAUSED for r in receiver.received)


# --- A real worker on the real broker -----------------------------------------------------------

WORKER_REDIS_URL = os.environ.get("BUDGET_TEST_WEBHOOK_REDIS_URL", "redis://127.0.0.1:6379/6")


@pytest.mark.worker
@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_sends_the_event(receiver: Receiver, endpoint: WebhookEndpoint, tmp_path: Path) -> None:
    """The worker finds the task through CELERY_IMPORTS and posts from its own process.

    The worker reads the test database (so PostgreSQL only) and consumes a queue of its own on
    Redis database 6; the task is sent by name, as beat or on_commit would.
    """
    redis.Redis.from_url(WORKER_REDIS_URL).ping()
    campaign = CampaignFactory.create()
    services.pause_campaign(campaign)
    queue = f"webhooks-test-{uuid4().hex[:8]}"
    db = settings.DATABASES["default"]
    database_url = f"postgres://{db['USER']}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"
    log_path = tmp_path / "worker.log"
    env = {**os.environ, "DATABASE_URL": database_url, "CELERY_BROKER_URL": WORKER_REDIS_URL}
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "budget_system",
        "worker",
        "--pool=solo",
        f"--queues={queue}",
    ]
    with log_path.open("wb") as log:
        worker = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [*command, "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    client = Celery("webhook-test-client", broker=WORKER_REDIS_URL)
    try:
        client.send_task("apps.budget.webhook_tasks.send_webhooks", queue=queue)
        deadline = time.monotonic() + 60
        while not receiver.received and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.2)
        assert receiver.received, f"no event arrived; worker log:\n{log_path.read_text(errors='replace')}"
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        broker = redis.Redis.from_url(WORKER_REDIS_URL)
        for key in [queue, *broker.scan_iter(match=f"_kombu.binding*.{queue}")]:
            broker.delete(key)

    assert verified(receiver.received[0])
    assert receiver.received[0].payload()["campaign"]["id"] == campaign.pk
    assert WebhookDelivery.objects.get().state == DeliveryState.DELIVERED

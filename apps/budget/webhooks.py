"""Outbound status events: every campaign status change, signed and sent to the webhook endpoints.

Where events come from: `services` writes every status change to the audit trail
(`CampaignStatusChange`), either one row (`_write_decision`) or set-based (`apply_rule_in_sql`).
Right there, in the same transaction, it calls `queue_status_change` / `queue_decided_changes`,
which insert one `WebhookDelivery` per (change, active endpoint) with `INSERT ... SELECT` and ask
for a send after commit: nothing goes out for a change that was rolled back, and no change is
missed, whoever made it (a job, an ingestion, a person).

How they go out: `send_due_deliveries` (run by the Celery task `webhook_tasks.send_webhooks`)
claims due rows in a short transaction (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's
IMMEDIATE transactions serialise it) by pushing `next_attempt_at` past the attempt, so a second
sender running at the same time skips them; then posts each outside any transaction and records
the outcome. A failure is retried with exponential backoff up to `MAX_ATTEMPTS`, then `failed`.
UNIQUE(endpoint, status_change) keeps one delivery per change and endpoint. A sender that dies
between the POST and recording it leaves the row to be sent again after its lease: receivers
deduplicate on the event id (`X-Budget-Event-Id`, also `id` in the body).

Signature: `X-Budget-Signature: sha256=<hex>` is HMAC-SHA256 with the endpoint's secret over
`<X-Budget-Timestamp>.<raw body>`; the timestamp (Unix seconds) is signed so that a captured
request cannot be replayed later. See `verify_signature`.
"""

import hashlib
import hmac
import http.client
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import F

from apps.budget.clock import utc_now
from apps.budget.models import (
    CampaignStatusChange,
    DeliveryState,
    WebhookDelivery,
    WebhookEndpoint,
)

logger = logging.getLogger(__name__)

EVENT_TYPE = "campaign.status_changed"
SIGNATURE_HEADER = "X-Budget-Signature"
TIMESTAMP_HEADER = "X-Budget-Timestamp"
EVENT_ID_HEADER = "X-Budget-Event-Id"
# A receiver should refuse a timestamp further than this from its clock.
SIGNATURE_TOLERANCE_SECONDS = 300

TIMEOUT_SECONDS = 10
MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 3600
# How long a claimed row is left to its sender before another may try it (it may have died).
CLAIM_LEASE = timedelta(seconds=TIMEOUT_SECONDS * 6)
CLAIM_BATCH = 100
ERROR_MAX_LENGTH = 1000


# --- Queuing, inside the transaction that wrote the audit rows ---------------------------------


def _insert_deliveries(cursor: CursorWrapper, source_sql: str, params: Mapping[str, Any]) -> int:
    """One delivery per (audit row selected by `source_sql`, active endpoint); the send after commit.

    `source_sql` is a FROM ... WHERE fragment over the audit table aliased `a`. ON CONFLICT keeps
    the statement harmless for a change that already has its delivery.
    """
    if not WebhookEndpoint.objects.filter(is_active=True).exists():
        return 0
    delivery_table = WebhookDelivery._meta.db_table
    cursor.execute(
        f"INSERT INTO {delivery_table}"
        " (endpoint_id, status_change_id, state, attempts, last_error, created_at, next_attempt_at)"
        f" SELECT e.id, a.id, %(pending)s, 0, '', %(queued_at)s, %(queued_at)s"
        f" {source_sql} AND e.is_active"
        " ON CONFLICT (endpoint_id, status_change_id) DO NOTHING",
        {**params, "pending": DeliveryState.PENDING.value},
    )
    queued: int = cursor.rowcount
    if queued:
        # robust: the change is committed by then; a broker outage must not turn the caller's
        # success into an error. Django logs the failure, and the rows wait, pending, for the
        # next send (any later change, or the periodic send).
        transaction.on_commit(_send_soon, robust=True)
    return queued


def queue_status_change(change: CampaignStatusChange) -> int:
    """Queue the event of one audit row just written (services._write_decision)."""
    endpoint_table = WebhookEndpoint._meta.db_table
    audit_table = CampaignStatusChange._meta.db_table
    params = {
        "change_id": change.pk,
        "queued_at": connection.ops.adapt_datetimefield_value(change.changed_at),
    }
    with connection.cursor() as cursor:
        return _insert_deliveries(
            cursor,
            f"FROM {audit_table} a CROSS JOIN {endpoint_table} e WHERE a.id = %(change_id)s",
            params,
        )


def queue_decided_changes(cursor: CursorWrapper, decisions_table: str, params: Mapping[str, Any]) -> int:
    """Queue the events of the audit rows `services.apply_rule_in_sql` just wrote from its decisions.

    Those rows are the ones of a decided campaign with this actor, time and transition; the
    campaigns are locked, so no other transaction writes such a row meanwhile. `params` are
    apply_rule_in_sql's own (already adapted): `actor` and `changed_at`.
    """
    endpoint_table = WebhookEndpoint._meta.db_table
    audit_table = CampaignStatusChange._meta.db_table
    return _insert_deliveries(
        cursor,
        f"FROM {decisions_table} d"
        f" JOIN {audit_table} a ON a.campaign_id = d.campaign_id AND a.changed_at = %(changed_at)s"
        "  AND a.actor = %(actor)s AND a.old_status = d.old_status AND a.new_status = d.new_status"
        "  AND a.reason = d.new_reason"
        f" CROSS JOIN {endpoint_table} e WHERE 1 = 1",
        {"actor": params["actor"], "changed_at": params["changed_at"], "queued_at": params["changed_at"]},
    )


def _send_soon() -> None:
    # Imported here: the task module imports this one.
    from apps.budget.webhook_tasks import send_webhooks  # noqa: PLC0415

    send_webhooks.delay()


def requeue_deliveries(delivery_ids: list[int]) -> int:
    """Send failed deliveries again (an admin's action), from a fresh count of attempts."""
    with transaction.atomic():
        requeued = WebhookDelivery.objects.filter(pk__in=delivery_ids, state=DeliveryState.FAILED).update(
            state=DeliveryState.PENDING, attempts=0, next_attempt_at=utc_now(), last_error=""
        )
        if requeued:
            transaction.on_commit(_send_soon, robust=True)
    return requeued


# --- Signing -------------------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Budget-Signature value: HMAC-SHA256 over `<timestamp>.<body>`."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify_signature(
    secret: str,
    *,
    body: bytes,
    timestamp: str,
    signature: str,
    now: datetime,
    tolerance_seconds: int = SIGNATURE_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver does: recompute, compare in constant time, refuse a stale timestamp."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs(now.timestamp() - sent_at) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, sent_at, body), signature)


def event_payload(change: CampaignStatusChange) -> dict[str, Any]:
    """The event body: built from the audit row, which is never edited afterwards."""
    campaign = change.campaign
    return {
        "id": change.pk,
        "type": EVENT_TYPE,
        "campaign": {"id": campaign.pk, "name": campaign.name, "brand_id": campaign.brand_id},
        "old_status": change.old_status,
        "new_status": change.new_status,
        "reason": change.reason,
        "actor": change.actor,
        "changed_at": change.changed_at.isoformat(),
    }


def encode(payload: Mapping[str, Any]) -> bytes:
    # Sorted keys: the same bytes on every retry, whatever order the JSON column kept.
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


# --- Sending -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendReport:
    """What one run of the sender did; `retry_in` is when the earliest retry it scheduled is due."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    more_due: bool = False
    retry_in: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "delivered": self.delivered,
            "retrying": self.retrying,
            "failed": self.failed,
            "more_due": self.more_due,
            "retry_in": self.retry_in,
        }


def backoff_seconds(attempts: int) -> int:
    """The wait after the `attempts`-th failed attempt: 30 s, 60 s, 120 s, ... capped at an hour."""
    return int(min(BACKOFF_BASE_SECONDS * 2 ** (attempts - 1), BACKOFF_CAP_SECONDS))


def _claim(now: datetime, limit: int) -> list[WebhookDelivery]:
    """Take up to `limit` due deliveries for this sender: count the attempt, lease them."""
    with transaction.atomic():
        due = WebhookDelivery.objects.filter(state=DeliveryState.PENDING, next_attempt_at__lte=now).order_by(
            "next_attempt_at", "pk"
        )
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        ids = list(due.values_list("pk", flat=True)[:limit])
        if not ids:
            return []
        WebhookDelivery.objects.filter(pk__in=ids).update(
            attempts=F("attempts") + 1, next_attempt_at=now + CLAIM_LEASE
        )
        claimed = list(
            WebhookDelivery.objects.filter(pk__in=ids)
            .select_related("endpoint", "status_change__campaign")
            .order_by("pk")
        )
        unbuilt = [delivery for delivery in claimed if delivery.payload is None]
        for delivery in unbuilt:
            delivery.payload = event_payload(delivery.status_change)
        WebhookDelivery.objects.bulk_update(unbuilt, ["payload"])
        return claimed


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is a failure: following it would turn the POST into a GET to another URL."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def post_event(url: str, secret: str, payload: Mapping[str, Any], *, event_id: int, now: datetime) -> None:
    """POST one signed event; raises `DeliveryError` unless the receiver answers 2xx."""
    if not url.lower().startswith(("http://", "https://")):
        raise DeliveryError(f"refusing to send to {url!r}: only http and https URLs")
    body = encode(payload)
    timestamp = int(now.timestamp())
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "budget-system-webhooks/1",
            EVENT_ID_HEADER: str(event_id),
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret, timestamp, body),
        },
    )
    try:
        with _OPENER.open(request, timeout=TIMEOUT_SECONDS) as response:
            response.read()
    except urllib.error.HTTPError as error:
        raise DeliveryError(f"HTTP {error.code} {error.reason}") from error
    except (OSError, http.client.HTTPException, ValueError) as error:
        # OSError covers URLError, refused connections and timeouts.
        raise DeliveryError(f"{type(error).__name__}: {error}") from error


class DeliveryError(Exception):
    """The receiver did not take the event (network error or non-2xx answer)."""


def send_due_deliveries(*, now: datetime | None = None, limit: int = CLAIM_BATCH) -> SendReport:
    """Send the deliveries that are due (one batch), and record each outcome."""
    now = now or utc_now()
    claimed = _claim(now, limit)
    delivered = retrying = failed = 0
    retry_in: float | None = None
    for delivery in claimed:
        assert delivery.payload is not None  # built when claimed
        try:
            post_event(
                delivery.endpoint.url,
                delivery.endpoint.secret,
                delivery.payload,
                event_id=delivery.status_change_id,
                now=utc_now(),
            )
        except DeliveryError as error:
            message = str(error)[:ERROR_MAX_LENGTH]
            if delivery.attempts >= MAX_ATTEMPTS:
                failed += 1
                _record(delivery, state=DeliveryState.FAILED, last_error=message)
                logger.error(
                    "webhook delivery %s to %s failed for good after %d attempts: %s",
                    delivery.pk,
                    delivery.endpoint.url,
                    delivery.attempts,
                    message,
                )
            else:
                retrying += 1
                wait = backoff_seconds(delivery.attempts)
                retry_in = wait if retry_in is None else min(retry_in, wait)
                _record(
                    delivery,
                    state=DeliveryState.PENDING,
                    last_error=message,
                    next_attempt_at=utc_now() + timedelta(seconds=wait),
                )
                logger.warning(
                    "webhook delivery %s to %s failed (attempt %d), retrying in %d s: %s",
                    delivery.pk,
                    delivery.endpoint.url,
                    delivery.attempts,
                    wait,
                    message,
                )
        else:
            delivered += 1
            _record(delivery, state=DeliveryState.DELIVERED, last_error="", delivered_at=utc_now())
    return SendReport(
        delivered=delivered,
        retrying=retrying,
        failed=failed,
        more_due=len(claimed) == limit,
        retry_in=retry_in,
    )


def _record(delivery: WebhookDelivery, **outcome: Any) -> None:
    # Only while still pending: an admin may have changed the row meanwhile.
    WebhookDelivery.objects.filter(pk=delivery.pk, state=DeliveryState.PENDING).update(**outcome)

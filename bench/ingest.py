"""Ingestion throughput: single `services.record_spend` calls per second (in 1 and 2 processes) and
records per second through the batch API (`POST /api/v1/spend`) and `ingestion.record_spend_batch`.

Every record is 0.01 of today's spend at an hour already begun, with a unique external_id (as an
integration sends it), so each one is stored and counted: the full write path, not a duplicate.
"""

import json
import multiprocessing
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from time import perf_counter
from typing import Any

from django.db import connections
from django.db.models import Count
from django.test import Client
from django.utils import timezone

from apps.budget import api_keys, services
from apps.budget.choices import CampaignStatus
from apps.budget.ingestion import RecordStatus, record_spend_batch
from apps.budget.models import ApiKey, Campaign, Spend
from bench.measure import Timing, time_runs

AMOUNT = "0.01"
SAMPLE = 5_000
BATCH_URL = "/api/v1/spend"
# A worker that has not reported this long after its run should have ended is stuck.
WORKER_GRACE_SECONDS = 120


@dataclass(frozen=True, slots=True)
class Throughput:
    """Calls made by each process and over how long; the rate is the sum of the processes' rates."""

    calls: tuple[int, ...]
    seconds: tuple[float, ...]

    @property
    def per_second(self) -> float:
        return sum(calls / seconds for calls, seconds in zip(self.calls, self.seconds, strict=True))

    def as_dict(self) -> dict[str, Any]:
        return {"per_second": self.per_second, "calls": list(self.calls), "seconds": list(self.seconds)}


def active_campaigns(*, seed: int, brand_parity: int | None = None) -> list[int]:
    """Up to SAMPLE active campaigns in random order (of odd or even brands when asked)."""
    queryset = Campaign.objects.filter(status=CampaignStatus.ACTIVE)
    if brand_parity is not None:
        ids = list(queryset.values_list("pk", "brand_id").order_by("pk"))
        chosen = [pk for pk, brand_id in ids if brand_id % 2 == brand_parity]
    else:
        chosen = list(queryset.values_list("pk", flat=True).order_by("pk"))
    # Benchmark sampling, not a secret.
    rng = random.Random(seed)  # noqa: S311
    rng.shuffle(chosen)
    return chosen[:SAMPLE]


def one_brand_campaigns() -> tuple[list[int], list[int]]:
    """Two disjoint sets of active campaigns of the same brand (the brand with the most)."""
    busiest = (
        Campaign.objects.filter(status=CampaignStatus.ACTIVE)
        .values("brand_id")
        .annotate(n=Count("pk"))
        .order_by("-n", "brand_id")
        .first()
    )
    if busiest is None:
        raise RuntimeError("no active campaign to send spend to")
    ids = list(
        Campaign.objects.filter(status=CampaignStatus.ACTIVE, brand_id=busiest["brand_id"])
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return ids[0::2], ids[1::2] or ids[0::2]


def _record_spend_worker(
    index: int,
    campaign_ids: Sequence[int],
    seconds: float,
    barrier: Barrier,
    results: "Queue[tuple[int, int, float, str]]",
) -> None:
    """One process: warm up (connection, first queries), wait for the others, then call
    record_spend back to back for `seconds`."""
    try:
        tag = f"bench-{uuid.uuid4().hex[:12]}-{index}"
        now = timezone.now()
        services.record_spend(campaign_ids[0], AMOUNT, now.date(), now.hour, f"{tag}-warm-up")
        barrier.wait()
        count = 0
        started = perf_counter()
        deadline = started + seconds
        while perf_counter() < deadline:
            campaign_id = campaign_ids[count % len(campaign_ids)]
            services.record_spend(campaign_id, AMOUNT, now.date(), now.hour, f"{tag}-{count}")
            count += 1
        results.put((index, count, perf_counter() - started, ""))
    except BaseException as error:
        # Reported to the parent, which fails the benchmark with it; the worker fails too.
        results.put((index, 0, 0.0, repr(error)))
        barrier.abort()
        raise
    finally:
        connections.close_all()


def record_spend_rate(groups: Sequence[Sequence[int]], seconds: float) -> Throughput:
    """record_spend calls per second, one forked process per group of campaign ids, all at once."""
    if any(not group for group in groups):
        raise RuntimeError("every process needs at least one campaign to send spend to")
    context = multiprocessing.get_context("fork")
    # A forked child must not share the parent's database socket: it opens its own.
    connections.close_all()
    barrier = context.Barrier(len(groups))
    results: Queue[tuple[int, int, float, str]] = context.Queue()
    workers = [
        context.Process(target=_record_spend_worker, args=(index, list(group), seconds, barrier, results))
        for index, group in enumerate(groups)
    ]
    for worker in workers:
        worker.start()
    reports = [results.get(timeout=seconds + WORKER_GRACE_SECONDS) for _ in workers]
    for worker in workers:
        worker.join()
    failures = [error for _index, _count, _elapsed, error in reports if error]
    if failures or any(worker.exitcode != 0 for worker in workers):
        raise RuntimeError(f"record_spend workers failed: {failures or [w.exitcode for w in workers]}")
    reports.sort()
    return Throughput(
        calls=tuple(count for _i, count, _s, _e in reports), seconds=tuple(s for _i, _c, s, _e in reports)
    )


def commit_floor_rate(campaign_ids: Sequence[int], seconds: float) -> float:
    """Single-row INSERTs into the spend table per second, each its own transaction: the most
    `record_spend` calls one process can commit here, whatever they do besides. The rows are
    deleted afterwards."""
    table = Spend._meta.db_table
    tag = f"bench-commit-{uuid.uuid4().hex[:12]}"
    now = timezone.now()
    count = 0
    # Autocommit: every INSERT is a transaction of its own, committed (and flushed) before the next.
    with connections["default"].cursor() as cursor:
        started = perf_counter()
        deadline = started + seconds
        while perf_counter() < deadline:
            cursor.execute(
                f"INSERT INTO {table} (campaign_id, amount, date, hour, external_id, created_at)"
                " VALUES (%s, 1, %s, %s, %s, %s)",
                [campaign_ids[count % len(campaign_ids)], now.date(), now.hour, f"{tag}-{count}", now],
            )
            count += 1
        elapsed = perf_counter() - started
        cursor.execute(f"DELETE FROM {table} WHERE external_id LIKE %s", [f"{tag}-%"])
    return count / elapsed


# --- Batches -------------------------------------------------------------------------------------------


def batch_records(size: int, campaign_ids: Sequence[int], rng: random.Random) -> list[dict[str, object]]:
    """`size` records of today for random campaigns, each with a fresh external_id (as JSON sends)."""
    now = timezone.now()
    today: date = now.date()
    tag = uuid.uuid4().hex[:12]
    return [
        {
            "campaign_id": rng.choice(campaign_ids),
            "amount": AMOUNT,
            "date": today.isoformat(),
            "hour": rng.randrange(now.hour + 1),
            "external_id": f"bench-batch-{tag}-{n}",
        }
        for n in range(size)
    ]


class _Prepared:
    """The next request's body, built outside the timed part."""

    def __init__(self, size: int, campaign_ids: Sequence[int], seed: int) -> None:
        self.size = size
        self.campaign_ids = campaign_ids
        # Benchmark sampling, not a secret.
        self.rng = random.Random(seed)  # noqa: S311
        self.records: list[dict[str, object]] = []

    def next(self) -> None:
        self.records = batch_records(self.size, self.campaign_ids, self.rng)


def _created(answer: dict[str, Any], size: int) -> str:
    if answer.get("created") != size:
        raise RuntimeError(f"a batch of {size} stored {answer.get('created')}: {str(answer)[:500]}")
    return f"{size} created per batch"


def batch_api_timing(size: int, runs: int, campaign_ids: Sequence[int], seed: int) -> Timing:
    """Seconds per POST /api/v1/spend of `size` records (test client: the whole view, no network)."""
    ApiKey.objects.filter(name="bench").delete()
    _key, raw_key = api_keys.create_api_key(name="bench")
    client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    prepared = _Prepared(size, campaign_ids, seed)
    body = {"value": ""}

    def prepare() -> None:
        prepared.next()
        body["value"] = json.dumps({"records": prepared.records})

    def post() -> dict[str, Any]:
        response = client.post(BATCH_URL, data=body["value"], content_type="application/json")
        if response.status_code != 200:
            raise RuntimeError(
                f"POST {BATCH_URL} answered {response.status_code}: {response.content[:500]!r}"
            )
        answer: dict[str, Any] = response.json()
        return answer

    # One request first: URL resolution, schema building and the key lookup are warmed up.
    prepare()
    post()
    return time_runs(runs, post, prepare=prepare, describe=lambda answer: _created(_as_dict(answer), size))


def batch_function_timing(size: int, runs: int, campaign_ids: Sequence[int], seed: int) -> Timing:
    """Seconds per `ingestion.record_spend_batch` call of `size` records (no HTTP, no JSON)."""
    prepared = _Prepared(size, campaign_ids, seed + 1)

    def call() -> dict[str, Any]:
        results = record_spend_batch(prepared.records, actor="api:bench")
        return {"created": sum(result.status == RecordStatus.CREATED for result in results)}

    return time_runs(
        runs, call, prepare=prepared.next, describe=lambda answer: _created(_as_dict(answer), size)
    )


def _as_dict(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected the answer as a dict, got {type(value).__name__}")
    return value

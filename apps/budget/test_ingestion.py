"""`ingestion.record_spend_batch`: the rules of `record_spend`, set-based per batch."""

import threading
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from freezegun import freeze_time

from apps.budget.choices import CampaignStatus, PauseReason
from apps.budget.clock import utc_today
from apps.budget.conftest import BrandFactory, CampaignFactory
from apps.budget.ingestion import (
    BatchTooLarge,
    BrandNotAllowed,
    RecordResult,
    RecordStatus,
    record_spend_batch,
)
from apps.budget.models import Brand, Campaign, CampaignStatusChange, Spend
from apps.budget.services import record_spend

pytestmark = pytest.mark.django_db

TODAY = "2026-03-18"  # FROZEN_NOW's day; it is 12:00 UTC


def rec(
    campaign: Campaign | int, amount: object, day: str = TODAY, hour: int = 9, key: str | None = None
) -> dict[str, object]:
    campaign_id = campaign.pk if isinstance(campaign, Campaign) else campaign
    return {"campaign_id": campaign_id, "amount": amount, "date": day, "hour": hour, "external_id": key}


def statuses(results: list[RecordResult]) -> list[str]:
    return [result.status.value for result in results]


def test_valid_records_are_stored_and_counted_in_their_periods(
    frozen_now: datetime, campaign: Campaign
) -> None:
    # given: today, an earlier day of this month, last month
    records = [rec(campaign, "0.10", key=f"dime-{n}") for n in range(10)] + [
        rec(campaign, "7.00", day="2026-03-01", key="late"),
        rec(campaign, "50.00", day="2026-02-27", key="old"),
    ]

    results = record_spend_batch(records, actor="api:test")

    assert statuses(results) == ["created"] * 12
    campaign.refresh_from_db()
    brand = Brand.objects.get(pk=campaign.brand_id)
    # ten dimes are exactly 1.00; late spend counts in the month only; last month's nowhere
    assert (campaign.daily_spend, campaign.monthly_spend) == (Decimal("1.00"), Decimal("8.00"))
    assert (brand.daily_spend, brand.monthly_spend) == (Decimal("1.00"), Decimal("8.00"))
    assert Spend.objects.aggregate(total=Sum("amount"))["total"] == Decimal("58.00")


def test_batch_crossing_the_daily_budget_pauses_at_once_and_keeps_all_spend(
    frozen_now: datetime, campaign: Campaign
) -> None:
    results = record_spend_batch(
        [rec(campaign, "60.00", key="a"), rec(campaign, "55.55", key="b")], actor="api:platform"
    )

    assert statuses(results) == ["created", "created"]
    campaign.refresh_from_db()
    assert campaign.daily_spend == Decimal("115.55")  # recorded in full, past the 100.00 budget
    assert (campaign.status, campaign.pause_reason) == (CampaignStatus.PAUSED, PauseReason.DAILY_BUDGET)
    change = CampaignStatusChange.objects.get(campaign=campaign)
    assert (change.actor, change.new_status, change.reason) == ("api:platform", "PAUSED", "DAILY_BUDGET")


def test_brand_reaching_its_budget_pauses_every_campaign_of_the_brand(frozen_now: datetime) -> None:
    brand = BrandFactory.create(daily_budget=Decimal("100.00"))
    spender, bystander = CampaignFactory.create_batch(2, brand=brand, daily_budget=Decimal("500.00"))
    other_brand_campaign = CampaignFactory.create(daily_budget=Decimal("500.00"))

    record_spend_batch([rec(spender, "100.00"), rec(other_brand_campaign, "1.00")], actor="api:test")

    for stopped in (spender, bystander):
        stopped.refresh_from_db()
        assert (stopped.status, stopped.pause_reason) == (
            CampaignStatus.PAUSED,
            PauseReason.BRAND_DAILY_BUDGET,
        )
    other_brand_campaign.refresh_from_db()
    assert other_brand_campaign.status == CampaignStatus.ACTIVE


def test_resending_a_batch_stores_and_counts_nothing_twice(frozen_now: datetime, campaign: Campaign) -> None:
    batch = [rec(campaign, "10.00", hour=hour, key=f"k{hour}") for hour in range(5)]
    record_spend_batch(batch, actor="api:test")

    again = record_spend_batch(batch, actor="api:test")

    assert statuses(again) == ["duplicate"] * 5
    assert Spend.objects.count() == 5
    campaign.refresh_from_db()
    assert campaign.daily_spend == Decimal("50.00")


def test_same_key_with_other_data_is_a_conflict_stored_or_within_the_batch(
    frozen_now: datetime, campaign: Campaign
) -> None:
    record_spend_batch([rec(campaign, "10.00", key="stored")], actor="api:test")

    results = record_spend_batch(
        [
            rec(campaign, "11.00", key="stored"),  # conflicts with the stored row
            rec(campaign, "3.00", key="twice"),
            rec(campaign, "3.00", key="twice"),  # repeated in the batch, same data
            rec(campaign, "4.00", key="twice"),  # repeated in the batch, other data
            rec(campaign, "10.00", key="stored"),  # same as the stored row
        ],
        actor="api:test",
    )

    assert statuses(results) == ["error", "created", "duplicate", "error", "duplicate"]
    assert "was already used for a different spend (campaign" in results[0].errors["external_id"][0]
    assert "by record 1 of this batch" in results[3].errors["external_id"][0]
    campaign.refresh_from_db()
    assert campaign.daily_spend == Decimal("13.00")


def test_each_bad_record_names_its_fields_and_the_good_ones_are_stored(
    frozen_now: datetime, campaign: Campaign
) -> None:
    records: list[dict[str, object]] = [
        rec(campaign, "5.00", key="good"),
        rec(campaign, 5.5),
        rec(campaign, 5),
        rec(campaign, "5.001"),
        rec(campaign, "-1.00"),
        rec(campaign, "5.00", day="2026-03-19"),
        rec(campaign, "5.00", hour=13),
        rec(campaign, "5.00", hour=24),
        rec(987654, "5.00"),
        rec(campaign, "5.00", key=""),
        {"campaign_id": "x", "amount": None, "date": "yesterday", "hour": True},
        {},
        rec(campaign, "5.00", hour=12, key="also-good"),
    ]

    results = record_spend_batch(records, actor="api:test")

    assert statuses(results) == ["created"] + ["error"] * 11 + ["created"]
    errors = [dict(result.errors) for result in results]
    assert "not the number 5.5" in errors[1]["amount"][0]
    assert "not the number 5" in errors[2]["amount"][0]
    assert errors[3]["amount"] == ["amount '5.001' has more than 2 decimal places"]
    assert errors[4]["amount"] == ["amount '-1.00' must be greater than 0"]
    assert "in the future" in errors[5]["date"][0]
    assert "in the future" in errors[6]["hour"][0]
    assert errors[7]["hour"] == ["hour 24 is outside 0-23"]
    assert errors[8]["campaign_id"] == ["campaign 987654 does not exist"]
    assert "external_id" in errors[9]
    assert set(errors[10]) == {"campaign_id", "amount"}
    assert set(errors[11]) == {"campaign_id", "amount", "date", "hour"}
    campaign.refresh_from_db()
    assert campaign.daily_spend == Decimal("10.00")


def test_stale_aggregates_roll_forward_before_counting(campaign: Campaign) -> None:
    with freeze_time("2026-03-31 23:00:00+00:00"):
        record_spend_batch([rec(campaign, "40.00", day="2026-03-31", hour=22)], actor="api:test")
    # the reset at midnight was missed: the aggregates still count March 31

    with freeze_time("2026-04-01 01:00:00+00:00"):
        record_spend_batch([rec(campaign, "2.50", day="2026-04-01", hour=0)], actor="api:test")

    campaign.refresh_from_db()
    assert (campaign.daily_spend_day, campaign.monthly_spend_month) == (date(2026, 4, 1), date(2026, 4, 1))
    assert (campaign.daily_spend, campaign.monthly_spend) == (Decimal("2.50"), Decimal("2.50"))


def test_a_key_limited_to_other_brands_stores_nothing(frozen_now: datetime, campaign: Campaign) -> None:
    allowed = CampaignFactory.create()
    with pytest.raises(BrandNotAllowed) as refused:
        record_spend_batch(
            [rec(allowed, "1.00"), rec(campaign, "1.00"), rec(987654, "1.00")],
            actor="api:limited",
            allowed_brand_ids={allowed.brand_id},
        )

    assert refused.value.campaign_ids == [campaign.pk]  # the missing campaign is a record's error
    assert not Spend.objects.exists()


def test_more_than_ten_thousand_records_are_refused(frozen_now: datetime, campaign: Campaign) -> None:
    with pytest.raises(BatchTooLarge):
        record_spend_batch([rec(campaign, "1.00")] * 10_001, actor="api:test")
    assert not Spend.objects.exists()


def test_a_batch_ends_like_record_spend_one_record_at_a_time(frozen_now: datetime) -> None:
    """The two write paths agree on aggregates, statuses and reasons for the same spend."""

    def world(tag: str) -> list[Campaign]:
        brand = BrandFactory.create(name=f"Brand {tag}", daily_budget=Decimal("150.00"))
        return [
            CampaignFactory.create(brand=brand, name=f"{tag} {n}", daily_budget=Decimal(budget))
            for n, budget in enumerate(["40.00", "500.00", "90.00"])
        ]

    plan = [
        (0, "39.99", TODAY),
        (0, "0.01", TODAY),
        (1, "60.00", "2026-03-02"),
        (2, "89.99", TODAY),
        (1, "21.00", TODAY),
    ]
    one_by_one, batched = world("single"), world("batch")
    for n, (index, amount, day) in enumerate(plan):
        record_spend(one_by_one[index], amount, day, 9, f"single-{n}")
    record_spend_batch(
        [
            rec(batched[index], amount, day=day, key=f"batch-{n}")
            for n, (index, amount, day) in enumerate(plan)
        ],
        actor="api:test",
    )

    def state(campaigns: list[Campaign]) -> list[tuple[Any, ...]]:
        fields = ("daily_spend", "monthly_spend", "status", "pause_reason")
        rows = [Campaign.objects.values_list(*fields).get(pk=c.pk) for c in campaigns]
        brand = Brand.objects.values_list("daily_spend", "monthly_spend").get(pk=campaigns[0].brand_id)
        return [*rows, brand]

    assert state(batched) == state(one_by_one)
    assert state(batched)[0][2:] == ("PAUSED", "BRAND_DAILY_BUDGET")  # 150.99 spent against 150.00


def test_the_number_of_statements_does_not_grow_with_the_batch(frozen_now: datetime) -> None:
    def statements_for(size: int) -> int:
        campaigns = CampaignFactory.create_batch(5, daily_budget=Decimal("1000000.00"))
        records = [rec(campaigns[n % 5], "1.00", key=f"{size}-{n}") for n in range(size)]
        with CaptureQueriesContext(connection) as queries:
            results = record_spend_batch(records, actor="api:test")
        assert statuses(results) == ["created"] * size
        return len(queries.captured_queries)

    assert statements_for(5) == statements_for(500)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_overlapping_batches_store_each_record_once() -> None:
    # Real time here: freezegun's patching is not safe across threads.
    today = utc_today().isoformat()
    brand = BrandFactory.create(daily_budget=Decimal("100000.00"), monthly_budget=Decimal("1000000.00"))
    campaigns = CampaignFactory.create_batch(
        4, brand=brand, daily_budget=Decimal("100000.00"), monthly_budget=Decimal("1000000.00")
    )
    # Two integrations retry the same 300 records (same keys), in different orders.
    records = [
        rec(campaigns[n % 4], f"{n % 7 + 1}.25", day=today, hour=0, key=f"race-{n}") for n in range(300)
    ]
    barrier = threading.Barrier(2)
    outcomes: list[list[RecordResult]] = []
    failures: list[BaseException] = []

    def post(batch: list[dict[str, object]]) -> Callable[[], None]:
        def run() -> None:
            try:
                barrier.wait()
                outcomes.append(record_spend_batch(batch, actor="api:race"))
            except BaseException as error:  # noqa: BLE001 - re-raised in the test thread below
                failures.append(error)
            finally:
                connection.close()

        return run

    threads = [threading.Thread(target=post(records)), threading.Thread(target=post(records[::-1]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    if failures:
        raise failures[0]
    created = sum(result.status == RecordStatus.CREATED for outcome in outcomes for result in outcome)
    duplicates = sum(result.status == RecordStatus.DUPLICATE for outcome in outcomes for result in outcome)
    assert (created, duplicates) == (300, 300)
    assert Spend.objects.count() == 300
    for campaign in Campaign.objects.filter(brand=brand):
        total = Spend.objects.filter(campaign=campaign).aggregate(total=Sum("amount"))["total"]
        assert (campaign.daily_spend, campaign.monthly_spend) == (total, total)
    brand.refresh_from_db()
    assert brand.daily_spend == Spend.objects.aggregate(total=Sum("amount"))["total"]

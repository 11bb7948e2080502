"""Concurrent writers on PostgreSQL: no lost update, a pause exactly at the budget, no deadlock.

Each thread has its own database connection (Django's connections are per thread), so these
are real concurrent transactions contending for the same brand and campaign rows.
"""

import threading
from decimal import Decimal

import pytest
from django.db import OperationalError, connections, transaction

from apps.budget import services
from apps.budget.choices import CampaignStatus, PauseReason
from apps.budget.clock import utc_today
from apps.budget.conftest import BrandFactory, CampaignFactory, run_concurrently
from apps.budget.models import Brand, Campaign, CampaignStatusChange, Spend

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def rows_total(**filters: object) -> Decimal:
    return sum((s.amount for s in Spend.objects.filter(**filters)), Decimal("0.00"))


def test_concurrent_spends_lose_nothing_and_pause_exactly_at_the_budget() -> None:
    # given: a campaign with a 10.00 daily budget and a sibling on the same brand
    brand = BrandFactory.create(daily_budget=Decimal("1000.00"), monthly_budget=Decimal("10000.00"))
    campaign = CampaignFactory.create(brand=brand, daily_budget=Decimal("10.00"))
    sibling = CampaignFactory.create(brand=brand)
    today = utc_today()

    # when: 8 writers each record 10 spends of 0.17 on it (13.60 in all) and 5 on the sibling
    def spend(index: int) -> None:
        for n in range(10):
            services.record_spend(campaign.pk, "0.17", today, 0, external_id=f"c-{index}-{n}")
        for n in range(5):
            services.record_spend(sibling.pk, "1.01", today, 0, external_id=f"s-{index}-{n}")

    run_concurrently(spend)

    # then: every cent is counted, on the campaign and on the brand
    campaign.refresh_from_db()
    brand.refresh_from_db()
    assert Spend.objects.filter(campaign=campaign).count() == 80
    assert campaign.daily_spend == rows_total(campaign=campaign) == Decimal("13.60")
    assert brand.daily_spend == rows_total(campaign__brand=brand) == Decimal("13.60") + Decimal("40.40")
    assert brand.monthly_spend == brand.daily_spend

    # and the pause happened in the very transaction whose spend reached 10.00
    assert (campaign.status, campaign.pause_reason) == (CampaignStatus.PAUSED, PauseReason.DAILY_BUDGET)
    change = CampaignStatusChange.objects.get(campaign=campaign)
    running = Decimal("0.00")
    for row in Spend.objects.filter(campaign=campaign).order_by("id"):
        before, running = running, running + row.amount
        if running >= campaign.daily_budget:
            assert before < campaign.daily_budget
            assert change.changed_at == row.created_at  # one `now` for the spend and its pause
            break
    assert CampaignStatusChange.objects.filter(campaign=sibling).count() == 0


def test_the_same_external_id_from_many_writers_is_stored_and_counted_once() -> None:
    campaign = CampaignFactory.create()
    today = utc_today()
    stored_ids: list[int] = []

    def send(_index: int) -> None:
        stored_ids.append(services.record_spend(campaign.pk, "2.50", today, 0, external_id="retry-storm").pk)

    run_concurrently(send)

    campaign.refresh_from_db()
    assert Spend.objects.filter(external_id="retry-storm").count() == 1
    assert len(set(stored_ids)) == 1
    assert campaign.daily_spend == Decimal("2.50")


def test_the_periodic_check_running_beside_ingestion_never_loses_a_spend() -> None:
    # The hazard SPEC names: a recompute must not overwrite a concurrently committed spend.
    brands = [BrandFactory.create() for _ in range(2)]
    campaigns = [CampaignFactory.create(brand=brands[i % 2]) for i in range(4)]
    today = utc_today()

    def work(index: int) -> None:
        if index % 4 == 0:
            for _ in range(5):
                services.check_budgets(actor="job:check_campaign_budgets")
        else:
            for n in range(15):
                services.record_spend(campaigns[(index + n) % 4].pk, "0.33", today, 0)

    run_concurrently(work)

    for campaign in campaigns:
        campaign.refresh_from_db()
        assert campaign.daily_spend == rows_total(campaign=campaign)
    for brand in brands:
        brand.refresh_from_db()
        assert brand.daily_spend == rows_total(campaign__brand=brand)
    assert rows_total() == Decimal("0.33") * 6 * 15
    assert services.check_budgets(actor="job:check_campaign_budgets").drift == services.Drift()


def test_two_jobs_at_once_write_each_change_once() -> None:
    campaigns = CampaignFactory.create_batch(20, daily_budget=Decimal("0.00"))

    def job(_index: int) -> None:
        services.check_budgets(actor="job:check_campaign_budgets")

    run_concurrently(job, threads=4)

    assert CampaignStatusChange.objects.count() == len(campaigns)
    assert set(Campaign.objects.values_list("pause_reason", flat=True)) == {PauseReason.DAILY_BUDGET}
    assert Brand.objects.count() == 20


def test_a_job_gives_up_on_a_brand_lock_held_too_long_and_leaves_ingestion_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given: a writer holds a brand row lock (a stuck transaction)
    campaign = CampaignFactory.create()
    monkeypatch.setattr(services, "JOB_LOCK_TIMEOUT_MS", 300)
    holding, release = threading.Event(), threading.Event()

    def stuck_writer() -> None:
        try:
            with transaction.atomic():
                services.lock_campaign(campaign.pk)
                holding.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    writer = threading.Thread(target=stuck_writer)
    writer.start()
    try:
        assert holding.wait(timeout=10)
        # when / then: the job fails fast with the error its task retries on
        with pytest.raises(OperationalError, match="lock timeout"):
            services.check_budgets(actor="job:check_campaign_budgets")
    finally:
        release.set()
        writer.join(timeout=30)
    # and once the lock is gone, the same job runs
    assert services.check_budgets(actor="job:check_campaign_budgets").drift == services.Drift()

"""Factories and fixtures shared by the budget tests (the layout the seed promised)."""

import threading
from collections.abc import Callable, Iterator
from datetime import date, datetime
from decimal import Decimal

import pytest
from django.db import connection, connections
from factory.declarations import LazyFunction, Sequence, SubFactory
from factory.django import DjangoModelFactory
from freezegun import freeze_time

from apps.budget.choices import CampaignStatus, PauseReason
from apps.budget.clock import month_start, utc_today
from apps.budget.models import Brand, Campaign, DaypartingSchedule, Spend
from apps.budget.services import record_spend

# A fixed Wednesday mid-month at noon: far from every day, month and hour edge unless a test
# moves the clock there on purpose.
FROZEN_NOW = "2026-03-18 12:00:00+00:00"


class BrandFactory(DjangoModelFactory[Brand]):
    class Meta:
        model = Brand
        django_get_or_create = ("name",)

    name = Sequence(lambda n: f"Brand {n}")
    daily_budget = Decimal("5000.00")
    monthly_budget = Decimal("100000.00")
    is_active = True


class CampaignFactory(DjangoModelFactory[Campaign]):
    class Meta:
        model = Campaign

    brand = SubFactory(BrandFactory)
    name = Sequence(lambda n: f"Campaign {n}")
    daily_budget = Decimal("100.00")
    monthly_budget = Decimal("2000.00")
    start_date = LazyFunction(lambda: month_start(utc_today()))
    end_date = None


class SpendFactory(DjangoModelFactory[Spend]):
    """A raw Spend row, written without the services: for reconciliation and drift tests."""

    class Meta:
        model = Spend

    campaign = SubFactory(CampaignFactory)
    amount = Decimal("10.00")
    date = LazyFunction(utc_today)
    hour = 9
    external_id = None


class DaypartingScheduleFactory(DjangoModelFactory[DaypartingSchedule]):
    class Meta:
        model = DaypartingSchedule

    campaign = SubFactory(CampaignFactory)
    day_of_week = LazyFunction(lambda: utc_today().weekday())
    start_hour = 9
    end_hour = 17


THREADS = 8


def run_concurrently(work: Callable[[int], None], threads: int = THREADS) -> None:
    """Run `work(i)` in `threads` threads released at the same instant; re-raise any failure."""
    barrier = threading.Barrier(threads)
    failures: list[BaseException] = []

    def target(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            work(index)
        except BaseException as error:  # noqa: BLE001  # re-raised in the test thread below
            failures.append(error)
        finally:
            connections.close_all()

    pool = [threading.Thread(target=target, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in pool), "a writer hung (deadlock?)"
    if failures:
        raise failures[0]


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `postgres` need row locks and real concurrency: run them on PostgreSQL only."""
    if is_postgresql():
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: run with DATABASE_URL=postgres://...")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def frozen_now() -> Iterator[datetime]:
    """The clock stopped at FROZEN_NOW for the whole test."""
    with freeze_time(FROZEN_NOW) as frozen:
        yield frozen()


@pytest.fixture
def brand(db: None) -> Brand:
    return BrandFactory.create()


@pytest.fixture
def campaign(brand: Brand) -> Campaign:
    return CampaignFactory.create(brand=brand)


@pytest.fixture
def active_campaign(brand: Brand) -> Campaign:
    created = CampaignFactory.create(brand=brand, name="Active campaign")
    assert created.status == CampaignStatus.ACTIVE
    return created


@pytest.fixture
def paused_campaign(brand: Brand) -> Campaign:
    """Paused by a person: only a person's resume brings it back."""
    return CampaignFactory.create(
        brand=brand, name="Paused campaign", status=CampaignStatus.PAUSED, pause_reason=PauseReason.MANUAL
    )


@pytest.fixture
def campaign_with_dayparting(brand: Brand) -> Campaign:
    """Runs Monday to Friday, 09:00 to 17:00 UTC."""
    created = CampaignFactory.create(brand=brand, name="Office hours campaign")
    for day in range(5):
        DaypartingScheduleFactory.create(campaign=created, day_of_week=day, start_hour=9, end_hour=17)
    return created


@pytest.fixture
def multiple_campaigns(brand: Brand) -> list[Campaign]:
    return list(CampaignFactory.create_batch(5, brand=brand))


@pytest.fixture
def campaign_near_daily_limit(brand: Brand) -> Campaign:
    """99.99 of its 100.00 daily budget spent today: one more cent pauses it."""
    created = CampaignFactory.create(brand=brand, name="Near daily limit")
    record_spend(created, Decimal("99.99"), utc_today(), 0)
    created.refresh_from_db()
    return created


@pytest.fixture
def campaign_near_monthly_limit(brand: Brand) -> Campaign:
    """1999.99 of its 2000.00 monthly budget spent on the 1st, far from its daily budget."""
    created = CampaignFactory.create(brand=brand, name="Near monthly limit", daily_budget=Decimal("2500.00"))
    record_spend(created, Decimal("1999.99"), month_start(utc_today()), 0)
    created.refresh_from_db()
    return created


def day(iso: str) -> date:
    return date.fromisoformat(iso)

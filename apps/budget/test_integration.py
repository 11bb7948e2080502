"""Whole workflows across services, jobs and the command, at the clock's edges."""

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from io import StringIO
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory

from apps.budget import services
from apps.budget.choices import CampaignStatus, PauseReason
from apps.budget.conftest import BrandFactory, CampaignFactory, DaypartingScheduleFactory
from apps.budget.models import Brand, Campaign, CampaignStatusChange, Spend

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture
def clock() -> Iterator[FrozenDateTimeFactory]:
    with freeze_time("2026-01-30 08:00:00") as frozen:  # a Friday
        assert isinstance(frozen, FrozenDateTimeFactory)
        yield frozen


def state(campaign: Campaign) -> tuple[str, str]:
    campaign.refresh_from_db()
    return campaign.status, campaign.pause_reason


def test_a_day_in_the_life_of_a_dayparted_campaign(clock: FrozenDateTimeFactory) -> None:
    # given: office hours Monday to Friday 09-17, 100.00 a day
    campaign = CampaignFactory.create(start_date=date(2026, 1, 1))
    for weekday in range(5):
        DaypartingScheduleFactory.create(campaign=campaign, day_of_week=weekday, start_hour=9, end_hour=17)

    services.enforce_dayparting(actor="job:enforce_dayparting")
    assert state(campaign) == (CampaignStatus.PAUSED, PauseReason.DAYPARTING)  # 08:00

    clock.move_to("2026-01-30 09:00:00")
    services.enforce_dayparting(actor="job:enforce_dayparting")
    assert state(campaign) == (CampaignStatus.ACTIVE, "")

    # spend arrives through the day; the one that reaches 100.00 pauses at once
    for hour, amount in [(9, "30.00"), (10, "30.00"), (11, "39.99")]:
        clock.move_to(f"2026-01-30 {hour}:30:00")
        services.record_spend(campaign, amount, date(2026, 1, 30), hour)
    assert state(campaign) == (CampaignStatus.ACTIVE, "")
    clock.move_to("2026-01-30 12:10:00")
    services.record_spend(campaign, "0.01", date(2026, 1, 30), 12)
    assert state(campaign) == (CampaignStatus.PAUSED, PauseReason.DAILY_BUDGET)

    # the window closes: the budget reason keeps precedence
    clock.move_to("2026-01-30 17:00:00")
    services.enforce_dayparting(actor="job:enforce_dayparting")
    assert state(campaign) == (CampaignStatus.PAUSED, PauseReason.DAILY_BUDGET)

    # midnight: a new day, but Saturday has no window
    clock.move_to("2026-01-31 00:00:00")
    services.reset_budgets(daily=True, monthly=False, actor="job:reset_daily_budgets")
    assert state(campaign) == (CampaignStatus.PAUSED, PauseReason.DAYPARTING)

    # Monday 09:00 it runs again
    clock.move_to("2026-02-02 09:00:00")
    services.reset_budgets(actor="job:reset_daily_budgets")
    services.enforce_dayparting(actor="job:enforce_dayparting")
    assert state(campaign) == (CampaignStatus.ACTIVE, "")

    trail = list(CampaignStatusChange.objects.order_by("id").values_list("new_status", "reason", "actor"))
    assert trail == [
        ("PAUSED", "DAYPARTING", "job:enforce_dayparting"),
        ("ACTIVE", "", "job:enforce_dayparting"),
        ("PAUSED", "DAILY_BUDGET", "system"),
        ("PAUSED", "DAYPARTING", "job:reset_daily_budgets"),
        # Monday's reset ran before 09:00's dayparting job, at 09:00 already: it resumed the campaign
        ("ACTIVE", "", "job:reset_daily_budgets"),
    ]


def test_month_end_pause_lifts_on_the_first(clock: FrozenDateTimeFactory) -> None:
    campaign = CampaignFactory.create(
        start_date=date(2026, 1, 1), daily_budget=Decimal("500.00"), monthly_budget=Decimal("300.00")
    )
    clock.move_to("2026-01-31 23:30:00")
    services.record_spend(campaign, "300.00", date(2026, 1, 31), 23)
    assert state(campaign) == (CampaignStatus.PAUSED, PauseReason.MONTHLY_BUDGET)

    clock.move_to("2026-01-31 23:59:59")
    services.check_budgets(actor="job:check_campaign_budgets")
    assert state(campaign) == (CampaignStatus.PAUSED, PauseReason.MONTHLY_BUDGET)

    clock.move_to("2026-02-01 00:00:00")
    services.reset_budgets(daily=True, monthly=False, actor="job:reset_daily_budgets")
    # the daily reset alone already sees that January's total counts nothing in February
    assert state(campaign) == (CampaignStatus.ACTIVE, "")
    report = services.reset_budgets(daily=False, monthly=True, actor="job:reset_monthly_budgets")
    assert report.rolled.campaigns_monthly == 1
    campaign.refresh_from_db()
    assert (campaign.monthly_spend, campaign.monthly_spend_month) == (Decimal("0.00"), date(2026, 2, 1))

    # late January spend arriving in February is stored and counted nowhere
    services.record_spend(campaign, "10.00", date(2026, 1, 31), 22)
    campaign.refresh_from_db()
    assert campaign.monthly_spend == Decimal("0.00")
    assert Spend.objects.filter(campaign=campaign).count() == 2


def test_leap_day_belongs_to_february(clock: FrozenDateTimeFactory) -> None:
    clock.move_to("2028-02-29 18:00:00")
    campaign = CampaignFactory.create(start_date=date(2028, 2, 1), monthly_budget=Decimal("50.00"))
    services.record_spend(campaign, "50.00", date(2028, 2, 29), 17)
    assert state(campaign) == (CampaignStatus.PAUSED, PauseReason.MONTHLY_BUDGET)

    clock.move_to("2028-03-01 00:00:00")
    report = services.reset_budgets(actor="job:reset_monthly_budgets")
    assert (report.rolled.campaigns_daily, report.rolled.campaigns_monthly) == (1, 1)
    assert state(campaign) == (CampaignStatus.ACTIVE, "")


def test_a_missed_midnight_reset_never_blocks_today(clock: FrozenDateTimeFactory) -> None:
    campaign = CampaignFactory.create(start_date=date(2026, 1, 1))
    clock.move_to("2026-01-30 22:00:00")
    services.record_spend(campaign, "100.00", date(2026, 1, 30), 21)
    assert state(campaign) == (CampaignStatus.PAUSED, PauseReason.DAILY_BUDGET)

    # beat was down at midnight: no reset ran; the next 5-minute check catches up
    clock.move_to("2026-01-31 00:05:00")
    report = services.check_budgets(actor="job:check_campaign_budgets")
    assert report.rolled.campaigns_daily == 1
    assert state(campaign) == (CampaignStatus.ACTIVE, "")
    campaign.refresh_from_db()
    assert (campaign.daily_spend, campaign.monthly_spend) == (Decimal("0.00"), Decimal("100.00"))


def test_a_spend_arriving_before_any_job_after_midnight_counts_fresh(clock: FrozenDateTimeFactory) -> None:
    campaign = CampaignFactory.create(start_date=date(2026, 1, 1))
    services.record_spend(campaign, "100.00", date(2026, 1, 30), 7)
    clock.move_to("2026-01-31 00:00:30")

    services.record_spend(campaign, "5.00", date(2026, 1, 31), 0)

    assert state(campaign) == (CampaignStatus.ACTIVE, "")
    assert campaign.daily_spend == Decimal("5.00")


def test_a_brand_over_budget_holds_every_campaign_until_the_next_day(clock: FrozenDateTimeFactory) -> None:
    brand = BrandFactory.create(daily_budget=Decimal("50.00"))
    campaigns = CampaignFactory.create_batch(3, brand=brand, start_date=date(2026, 1, 1))
    services.record_spend(campaigns[0], "50.00", date(2026, 1, 30), 7)
    assert {state(c) for c in campaigns} == {(CampaignStatus.PAUSED, PauseReason.BRAND_DAILY_BUDGET)}

    # a person raises the brand's budget: all come back at once
    brand.refresh_from_db()
    brand.daily_budget = Decimal("80.00")
    services.save_brand(brand)
    assert {state(c) for c in campaigns} == {(CampaignStatus.ACTIVE, "")}


# --- the reset_budgets command ---------------------------------------------------------------------


def run_command(*args: str) -> str:
    out = StringIO()
    call_command("reset_budgets", *args, stdout=out)
    return out.getvalue()


def test_the_command_reports_what_it_rolled_and_which_campaigns_changed(clock: FrozenDateTimeFactory) -> None:
    brand = BrandFactory.create(name="Acme")
    paused = CampaignFactory.create(brand=brand, name="Winter", start_date=date(2026, 1, 1))
    CampaignFactory.create(brand=brand, name="Summer", start_date=date(2026, 1, 1))
    services.record_spend(paused, "100.00", date(2026, 1, 30), 7)
    clock.move_to("2026-01-31 00:00:00")

    output = run_command()

    assert "Budgets for 2026-01-31 (UTC)" in output
    assert "Rolled over daily aggregates: 1 brands, 2 campaigns" in output
    assert "Rolled over monthly aggregates: 0 brands, 0 campaigns" in output
    assert "1 campaigns changed status:" in output
    assert "PAUSED -> ACTIVE: 1" in output
    assert f"#{paused.pk} Acme / Winter: PAUSED -> ACTIVE" in output
    assert state(paused) == (CampaignStatus.ACTIVE, "")
    assert CampaignStatusChange.objects.filter(actor="command:reset_budgets").count() == 1

    # run again: nothing left to roll, nothing changes
    again = run_command("--daily")
    assert "Rolled over daily aggregates: 0 brands, 0 campaigns" in again
    assert "No campaign changed status." in again


def test_the_commands_dry_run_changes_nothing(clock: FrozenDateTimeFactory) -> None:
    campaign = CampaignFactory.create(start_date=date(2026, 1, 1))
    services.record_spend(campaign, "100.00", date(2026, 1, 30), 7)
    clock.move_to("2026-01-31 00:00:00")

    output = run_command("--dry-run")

    assert "PAUSED -> ACTIVE: 1" in output
    assert "Dry run: nothing was changed." in output
    assert state(campaign) == (CampaignStatus.PAUSED, PauseReason.DAILY_BUDGET)
    assert Campaign.objects.get(pk=campaign.pk).daily_spend == Decimal("100.00")
    assert Brand.objects.get().daily_spend_day == date(2026, 1, 30)


def test_the_command_fails_with_a_message_when_the_database_fails(db: None) -> None:
    # Simulates the database going away mid-run; the command must say so and exit non-zero.
    with (
        mock.patch.object(
            services, "reset_budgets", side_effect=OperationalError("server closed the connection")
        ),
        pytest.raises(CommandError, match="reset_budgets failed, nothing was changed: server closed"),
    ):
        run_command("--monthly")

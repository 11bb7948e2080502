"""The write paths of services.py on a real database: spend, pause, resume, resets, the check."""

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory

from apps.budget import services
from apps.budget.choices import CampaignStatus, PauseReason
from apps.budget.conftest import FROZEN_NOW, CampaignFactory, DaypartingScheduleFactory, SpendFactory
from apps.budget.models import Brand, Campaign, CampaignStatusChange, Spend

pytestmark = pytest.mark.django_db

TODAY = date(2026, 3, 18)  # FROZEN_NOW, a Wednesday, 12:00 UTC


@pytest.fixture(autouse=True)
def clock() -> Iterator[FrozenDateTimeFactory]:
    with freeze_time(FROZEN_NOW) as frozen:
        assert isinstance(frozen, FrozenDateTimeFactory)
        yield frozen


def reload(*objects: Brand | Campaign) -> None:
    for obj in objects:
        obj.refresh_from_db()


def status_of(campaign: Campaign) -> tuple[str, str]:
    campaign.refresh_from_db()
    return campaign.status, campaign.pause_reason


def spends_total(campaign: Campaign, since: date) -> Decimal:
    return sum((s.amount for s in Spend.objects.filter(campaign=campaign, date__gte=since)), Decimal("0.00"))


# --- record_spend: counting ------------------------------------------------------------------------


def test_spend_of_today_counts_in_day_and_month_of_campaign_and_brand(campaign: Campaign) -> None:
    spend = services.record_spend(campaign, Decimal("12.34"), TODAY, 11)

    reload(campaign, campaign.brand)
    assert spend.pk is not None
    assert (spend.amount, spend.date, spend.hour) == (Decimal("12.34"), TODAY, 11)
    assert (campaign.daily_spend, campaign.monthly_spend) == (Decimal("12.34"), Decimal("12.34"))
    assert (campaign.brand.daily_spend, campaign.brand.monthly_spend) == (Decimal("12.34"), Decimal("12.34"))


def test_ten_dimes_reach_a_one_euro_budget_exactly(brand: Brand) -> None:
    campaign = CampaignFactory.create(brand=brand, daily_budget=Decimal("1.00"))
    for _ in range(9):
        services.record_spend(campaign, "0.10", TODAY, 10)
    assert status_of(campaign) == (CampaignStatus.ACTIVE, "")

    services.record_spend(campaign, "0.10", TODAY, 10)

    assert status_of(campaign) == (CampaignStatus.PAUSED, PauseReason.DAILY_BUDGET)
    assert campaign.daily_spend == Decimal("1.00")


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("0.00", (CampaignStatus.ACTIVE, "")),  # nothing more: one cent under stays active
        ("0.01", (CampaignStatus.PAUSED, PauseReason.DAILY_BUDGET)),  # exactly at the budget
        ("50.00", (CampaignStatus.PAUSED, PauseReason.DAILY_BUDGET)),  # crossing it
    ],
)
def test_the_spend_that_reaches_the_daily_budget_pauses_at_once(
    campaign_near_daily_limit: Campaign, amount: str, expected: tuple[str, str]
) -> None:
    if Decimal(amount):
        services.record_spend(campaign_near_daily_limit, amount, TODAY, 12)
    assert status_of(campaign_near_daily_limit) == expected


def test_spend_crossing_a_budget_is_recorded_in_full(campaign_near_daily_limit: Campaign) -> None:
    services.record_spend(campaign_near_daily_limit, "500.00", TODAY, 12)

    reload(campaign_near_daily_limit)
    assert campaign_near_daily_limit.daily_spend == Decimal("599.99")
    assert spends_total(campaign_near_daily_limit, TODAY) == Decimal("599.99")


def test_reaching_the_monthly_budget_pauses_for_the_month(campaign_near_monthly_limit: Campaign) -> None:
    services.record_spend(campaign_near_monthly_limit, "0.01", TODAY, 8)
    assert status_of(campaign_near_monthly_limit) == (CampaignStatus.PAUSED, PauseReason.MONTHLY_BUDGET)


def test_a_brand_reaching_its_budget_pauses_all_its_campaigns_and_no_others(
    multiple_campaigns: list[Campaign],
) -> None:
    brand = multiple_campaigns[0].brand
    Brand.objects.filter(pk=brand.pk).update(daily_budget=Decimal("30.00"))
    other = CampaignFactory.create()

    services.record_spend(multiple_campaigns[0], "10.00", TODAY, 9)
    services.record_spend(multiple_campaigns[1], "20.00", TODAY, 9)

    assert {status_of(c) for c in multiple_campaigns} == {
        (CampaignStatus.PAUSED, PauseReason.BRAND_DAILY_BUDGET)
    }
    assert status_of(other) == (CampaignStatus.ACTIVE, "")
    brand.refresh_from_db()
    assert brand.daily_spend == Decimal("30.00")


def test_late_spend_for_an_earlier_day_counts_in_the_month_only(campaign: Campaign) -> None:
    services.record_spend(campaign, "7.00", TODAY - timedelta(days=3), 23)

    reload(campaign, campaign.brand)
    assert (campaign.daily_spend, campaign.monthly_spend) == (Decimal("0.00"), Decimal("7.00"))
    assert (campaign.brand.daily_spend, campaign.brand.monthly_spend) == (Decimal("0.00"), Decimal("7.00"))


def test_spend_from_a_past_month_is_stored_but_counts_nowhere(campaign: Campaign) -> None:
    spend = services.record_spend(campaign, "7.00", date(2026, 2, 28), 23)

    reload(campaign)
    assert Spend.objects.filter(pk=spend.pk).exists()
    assert (campaign.daily_spend, campaign.monthly_spend) == (Decimal("0.00"), Decimal("0.00"))


def test_spend_outside_the_campaign_dates_is_still_counted(brand: Brand) -> None:
    campaign = CampaignFactory.create(brand=brand, start_date=TODAY + timedelta(days=5))
    services.record_spend(campaign, "3.00", TODAY, 1)

    reload(campaign)
    assert campaign.daily_spend == Decimal("3.00")
    assert (campaign.status, campaign.pause_reason) == (CampaignStatus.PAUSED, PauseReason.NOT_STARTED)


def test_spend_on_a_completed_campaign_is_counted_and_it_stays_completed(brand: Brand) -> None:
    campaign = CampaignFactory.create(
        brand=brand, status=CampaignStatus.COMPLETED, end_date=TODAY - timedelta(days=1)
    )
    services.record_spend(campaign, "3.00", TODAY - timedelta(days=1), 20)
    assert status_of(campaign) == (CampaignStatus.COMPLETED, "")
    assert campaign.monthly_spend == Decimal("3.00")


def test_campaign_id_and_integer_amount_are_accepted(campaign: Campaign) -> None:
    spend = services.record_spend(campaign.pk, 5, TODAY.isoformat(), 0)
    assert (spend.campaign_id, spend.amount, spend.date) == (campaign.pk, Decimal("5.00"), TODAY)


def test_a_stale_aggregate_is_rolled_to_today_before_counting(
    campaign: Campaign, clock: FrozenDateTimeFactory
) -> None:
    services.record_spend(campaign, "40.00", TODAY, 10)
    clock.move_to("2026-03-19 00:30:00")  # midnight passed and no reset job ran

    services.record_spend(campaign, "1.00", date(2026, 3, 19), 0)

    reload(campaign)
    assert (campaign.daily_spend, campaign.daily_spend_day) == (Decimal("1.00"), date(2026, 3, 19))
    assert campaign.monthly_spend == Decimal("41.00")


# --- record_spend: bad input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "day", "hour", "field", "fragment"),
    [
        (12.5, TODAY, 1, "amount", "not float"),
        ("0", TODAY, 1, "amount", "must be greater than 0"),
        ("-5.00", TODAY, 1, "amount", "must be greater than 0"),
        ("1.234", TODAY, 1, "amount", "more than 2 decimal places"),
        ("1000000000.01", TODAY, 1, "amount", "above the maximum"),
        ("ten", TODAY, 1, "amount", "'ten' is not a decimal number"),
        ("1.00", TODAY, 24, "hour", "hour 24 is outside 0-23"),
        ("1.00", TODAY, -1, "hour", "hour -1 is outside 0-23"),
        ("1.00", TODAY, True, "hour", "hour must be an integer"),
        ("1.00", TODAY, "3", "hour", "hour must be an integer"),
        ("1.00", TODAY, 13, "hour", "hour 13 of 2026-03-18 is in the future"),
        ("1.00", TODAY + timedelta(days=1), 0, "date", "date 2026-03-19 is in the future"),
        ("1.00", "18/03/2026", 0, "date", "is not an ISO date"),
        ("1.00", datetime(2026, 3, 18, 1, 0), 1, "date", "not the datetime"),
    ],
)
def test_bad_input_names_the_field_and_stores_nothing(
    campaign: Campaign, amount: object, day: object, hour: object, field: str, fragment: str
) -> None:
    with pytest.raises(ValidationError) as error:
        services.record_spend(campaign, amount, day, hour)  # type: ignore[arg-type]  # bad on purpose

    assert field in error.value.error_dict
    assert fragment in " ".join(error.value.message_dict[field])
    assert not Spend.objects.exists()
    reload(campaign)
    assert campaign.daily_spend == Decimal("0.00")


def test_the_current_hour_is_not_in_the_future(campaign: Campaign) -> None:
    assert services.record_spend(campaign, "1.00", TODAY, 12).hour == 12


def test_every_bad_field_is_reported_at_once(campaign: Campaign) -> None:
    with pytest.raises(ValidationError) as error:
        services.record_spend(campaign, "-1", "tomorrow", 99, external_id="")
    assert set(error.value.error_dict) == {"amount", "date", "hour", "external_id"}


def test_an_unknown_campaign_is_refused(db: None) -> None:
    with pytest.raises(ValidationError) as error:
        services.record_spend(987654, "1.00", TODAY, 1)
    assert error.value.message_dict == {"campaign": ["campaign 987654 does not exist"]}


@pytest.mark.parametrize("external_id", ["", "   ", "x" * 256, 42])
def test_a_bad_external_id_is_refused(campaign: Campaign, external_id: object) -> None:
    with pytest.raises(ValidationError) as error:
        services.record_spend(campaign, "1.00", TODAY, 1, external_id=external_id)  # type: ignore[arg-type]
    assert "external_id" in error.value.error_dict


# --- record_spend: idempotency ---------------------------------------------------------------------


def test_a_repeated_external_id_returns_the_stored_row_and_counts_once(campaign: Campaign) -> None:
    first = services.record_spend(campaign, "10.00", TODAY, 9, external_id="fb-2026-03-18-9")
    again = services.record_spend(
        campaign, Decimal("10"), TODAY.isoformat(), 9, external_id="fb-2026-03-18-9"
    )

    assert again.pk == first.pk
    assert Spend.objects.count() == 1
    reload(campaign, campaign.brand)
    assert campaign.daily_spend == Decimal("10.00")
    assert campaign.brand.daily_spend == Decimal("10.00")


@pytest.mark.parametrize(
    "changed",
    [{"amount": "11.00"}, {"hour": 8}, {"date": TODAY - timedelta(days=1)}, {"campaign": "other"}],
)
def test_the_same_external_id_with_different_data_is_a_conflict(
    campaign: Campaign, changed: dict[str, object]
) -> None:
    services.record_spend(campaign, "10.00", TODAY, 9, external_id="g-1")
    record: dict[str, object] = {"campaign": campaign, "amount": "10.00", "date": TODAY, "hour": 9, **changed}
    if record["campaign"] == "other":
        record["campaign"] = CampaignFactory.create()

    with pytest.raises(ValidationError) as error:
        services.record_spend(external_id="g-1", **record)  # type: ignore[arg-type]

    assert "was already used for a different spend" in error.value.message_dict["external_id"][0]
    assert Spend.objects.count() == 1
    reload(campaign)
    assert campaign.daily_spend == Decimal("10.00")


# --- the audit trail -------------------------------------------------------------------------------


def test_every_status_change_is_in_the_audit_trail_with_its_actor(
    campaign_near_daily_limit: Campaign,
) -> None:
    services.record_spend(campaign_near_daily_limit, "1.00", TODAY, 10, actor="api:facebook")

    change = CampaignStatusChange.objects.get(campaign=campaign_near_daily_limit)
    assert (change.old_status, change.new_status, change.reason, change.actor) == (
        CampaignStatus.ACTIVE,
        CampaignStatus.PAUSED,
        PauseReason.DAILY_BUDGET,
        "api:facebook",
    )
    assert change.changed_at == datetime.fromisoformat(FROZEN_NOW)


def test_spend_that_changes_no_status_writes_no_audit_row(campaign: Campaign) -> None:
    services.record_spend(campaign, "1.00", TODAY, 10)
    assert not CampaignStatusChange.objects.exists()


# --- pause and resume ------------------------------------------------------------------------------


@pytest.fixture
def alice(db: None) -> User:
    return User.objects.create_user("alice")


def test_a_person_pauses_and_resumes(active_campaign: Campaign, alice: User) -> None:
    services.pause_campaign(active_campaign, by=alice)
    assert (active_campaign.status, active_campaign.pause_reason) == (
        CampaignStatus.PAUSED,
        PauseReason.MANUAL,
    )
    assert status_of(active_campaign) == (CampaignStatus.PAUSED, PauseReason.MANUAL)

    services.resume_campaign(active_campaign, by=alice)
    assert status_of(active_campaign) == (CampaignStatus.ACTIVE, "")

    trail = list(
        CampaignStatusChange.objects.order_by("id").values_list("old_status", "new_status", "reason", "actor")
    )
    assert trail == [
        ("ACTIVE", "PAUSED", "MANUAL", "user:alice"),
        ("PAUSED", "ACTIVE", "", "user:alice"),
    ]


def test_a_manual_pause_is_never_lifted_by_a_job(
    paused_campaign: Campaign, clock: FrozenDateTimeFactory
) -> None:
    services.check_budgets(actor="job:test")
    clock.move_to("2026-03-19 00:00:00")
    services.reset_budgets(actor="job:test")
    assert status_of(paused_campaign) == (CampaignStatus.PAUSED, PauseReason.MANUAL)


def test_a_persons_pause_wins_over_a_budget_pause(campaign_near_daily_limit: Campaign) -> None:
    services.record_spend(campaign_near_daily_limit, "1.00", TODAY, 10)
    services.pause_campaign(campaign_near_daily_limit)
    assert status_of(campaign_near_daily_limit) == (CampaignStatus.PAUSED, PauseReason.MANUAL)


def test_pausing_twice_writes_one_audit_row(active_campaign: Campaign) -> None:
    services.pause_campaign(active_campaign)
    services.pause_campaign(active_campaign.pk)
    assert CampaignStatusChange.objects.count() == 1
    assert CampaignStatusChange.objects.get().actor == "system"


def test_resume_applies_the_rule_so_an_over_budget_campaign_stays_paused(
    campaign_near_daily_limit: Campaign,
) -> None:
    services.pause_campaign(campaign_near_daily_limit)
    services.record_spend(campaign_near_daily_limit, "1.00", TODAY, 10)

    services.resume_campaign(campaign_near_daily_limit)

    assert status_of(campaign_near_daily_limit) == (CampaignStatus.PAUSED, PauseReason.DAILY_BUDGET)


def test_pausing_a_completed_campaign_is_refused(brand: Brand) -> None:
    completed = CampaignFactory.create(
        brand=brand, status=CampaignStatus.COMPLETED, end_date=TODAY - timedelta(days=1)
    )
    with pytest.raises(ValidationError) as error:
        services.pause_campaign(completed)
    assert "is COMPLETED and cannot be paused" in error.value.message_dict["status"][0]
    assert status_of(completed) == (CampaignStatus.COMPLETED, "")


def test_a_completed_campaign_comes_back_only_with_a_later_end_date_and_a_resume(brand: Brand) -> None:
    completed = CampaignFactory.create(
        brand=brand, status=CampaignStatus.COMPLETED, end_date=TODAY - timedelta(days=1)
    )
    with pytest.raises(ValidationError) as error:
        services.resume_campaign(completed)
    assert "extend end_date" in error.value.message_dict["end_date"][0]

    completed.end_date = TODAY + timedelta(days=30)
    services.save_campaign(completed)
    assert status_of(completed) == (CampaignStatus.COMPLETED, "")  # a job never revives it

    services.resume_campaign(completed)
    assert status_of(completed) == (CampaignStatus.ACTIVE, "")


# --- edits through the services --------------------------------------------------------------------


def test_raising_a_budget_resumes_and_lowering_it_pauses(campaign_near_daily_limit: Campaign) -> None:
    campaign = campaign_near_daily_limit
    campaign.daily_budget = Decimal("99.99")
    services.save_campaign(campaign)
    assert (campaign.status, campaign.pause_reason) == (CampaignStatus.PAUSED, PauseReason.DAILY_BUDGET)

    campaign.daily_budget = Decimal("150.00")
    changes = services.save_campaign(campaign)
    assert (campaign.status, campaign.pause_reason) == (CampaignStatus.ACTIVE, "")
    assert changes.total == 1


def test_an_edit_never_overwrites_spend_counted_since_the_form_was_loaded(campaign: Campaign) -> None:
    form_copy = Campaign.objects.get(pk=campaign.pk)
    services.record_spend(campaign, "25.00", TODAY, 10)

    form_copy.name = "Renamed"
    services.save_campaign(form_copy)

    reload(campaign)
    assert (campaign.name, campaign.daily_spend) == ("Renamed", Decimal("25.00"))


def test_deactivating_a_brand_pauses_its_campaigns(multiple_campaigns: list[Campaign]) -> None:
    brand = multiple_campaigns[0].brand
    brand.is_active = False
    changes = services.save_brand(brand)
    assert changes.total == len(multiple_campaigns)
    assert {status_of(c) for c in multiple_campaigns} == {(CampaignStatus.PAUSED, PauseReason.BRAND_INACTIVE)}


def test_an_invalid_edit_names_the_field_and_stores_nothing(campaign: Campaign) -> None:
    campaign.monthly_budget = Decimal("-1.00")
    with pytest.raises(ValidationError) as error:
        services.save_campaign(campaign)
    assert "monthly_budget" in error.value.error_dict
    campaign.refresh_from_db()
    assert campaign.monthly_budget == Decimal("2000.00")


# --- resets and the periodic check -----------------------------------------------------------------


def test_a_reset_run_mid_day_changes_nothing(campaign_near_daily_limit: Campaign) -> None:
    services.record_spend(campaign_near_daily_limit, "1.00", TODAY, 10)

    report = services.reset_budgets(actor="job:test")

    assert report.rolled.total == 0
    assert report.changes.total == 0
    reload(campaign_near_daily_limit)
    assert campaign_near_daily_limit.daily_spend == spends_total(campaign_near_daily_limit, TODAY)
    assert campaign_near_daily_limit.pause_reason == PauseReason.DAILY_BUDGET


def test_the_daily_reset_rolls_over_and_resumes_budget_paused_campaigns(
    campaign_near_daily_limit: Campaign, clock: FrozenDateTimeFactory
) -> None:
    services.record_spend(campaign_near_daily_limit, "1.00", TODAY, 10)
    clock.move_to("2026-03-19 00:00:00")

    report = services.reset_budgets(daily=True, monthly=False, actor="job:reset_daily_budgets")

    assert (report.rolled.brands_daily, report.rolled.campaigns_daily) == (1, 1)
    assert (report.rolled.brands_monthly, report.rolled.campaigns_monthly) == (0, 0)
    assert [t.label() for t in report.changes.transitions] == ["PAUSED -> ACTIVE"]
    reload(campaign_near_daily_limit)
    assert (campaign_near_daily_limit.daily_spend, campaign_near_daily_limit.monthly_spend) == (
        Decimal("0.00"),
        Decimal("100.99"),
    )
    assert campaign_near_daily_limit.status == CampaignStatus.ACTIVE
    assert report.as_dict()["transitions"] == {"PAUSED -> ACTIVE": 1}


def test_the_monthly_reset_on_the_first_resumes_month_paused_campaigns(
    campaign_near_monthly_limit: Campaign, clock: FrozenDateTimeFactory
) -> None:
    services.record_spend(campaign_near_monthly_limit, "0.01", TODAY, 10)
    clock.move_to("2026-04-01 00:00:00")

    report = services.reset_budgets(daily=False, monthly=True, actor="job:reset_monthly_budgets")

    assert report.rolled.campaigns_monthly == 1
    assert status_of(campaign_near_monthly_limit) == (CampaignStatus.ACTIVE, "")
    assert campaign_near_monthly_limit.monthly_spend == Decimal("0.00")


def test_running_a_reset_twice_changes_nothing_the_second_time(
    campaign_near_daily_limit: Campaign, clock: FrozenDateTimeFactory
) -> None:
    services.record_spend(campaign_near_daily_limit, "1.00", TODAY, 10)
    clock.move_to("2026-03-19 00:00:00")

    first = services.reset_budgets(actor="job:test")
    second = services.reset_budgets(actor="job:test")

    assert first.changes.total == 1
    assert (second.rolled.total, second.changes.total) == (0, 0)
    assert CampaignStatusChange.objects.filter(actor="job:test").count() == 1


def test_the_check_repairs_drifted_aggregates_and_pauses_what_they_hid(campaign: Campaign) -> None:
    # given: spend rows that the aggregates do not show (written around the services)
    SpendFactory.create(campaign=campaign, amount=Decimal("60.00"), date=TODAY, hour=8)
    SpendFactory.create(campaign=campaign, amount=Decimal("40.00"), date=TODAY, hour=9)
    SpendFactory.create(campaign=campaign, amount=Decimal("5.00"), date=TODAY - timedelta(days=2), hour=9)
    SpendFactory.create(campaign=campaign, amount=Decimal("999.00"), date=date(2026, 2, 27), hour=9)

    # when
    report = services.check_budgets(actor="job:check_campaign_budgets")

    # then
    assert (report.drift.campaigns, report.drift.brands) == (1, 1)
    reload(campaign, campaign.brand)
    assert (campaign.daily_spend, campaign.monthly_spend) == (Decimal("100.00"), Decimal("105.00"))
    assert (campaign.brand.daily_spend, campaign.brand.monthly_spend) == (
        Decimal("100.00"),
        Decimal("105.00"),
    )
    assert (campaign.status, campaign.pause_reason) == (CampaignStatus.PAUSED, PauseReason.DAILY_BUDGET)
    assert services.check_budgets(actor="job:check_campaign_budgets").drift == services.Drift()


def test_the_check_finds_no_drift_after_spend_through_the_service(multiple_campaigns: list[Campaign]) -> None:
    for hour, campaign in enumerate(multiple_campaigns):
        services.record_spend(campaign, f"{hour + 1}.25", TODAY, hour)
        services.record_spend(campaign, "3.00", TODAY - timedelta(days=1), hour)
    assert services.check_budgets(actor="job:test").drift == services.Drift()


def test_dayparting_job_pauses_outside_and_resumes_inside_windows(
    campaign_with_dayparting: Campaign, clock: FrozenDateTimeFactory
) -> None:
    clock.move_to("2026-03-18 17:00:00")  # Wednesday, the window 09-17 just closed
    report = services.enforce_dayparting(actor="job:enforce_dayparting")
    assert report.changes.total == 1
    assert status_of(campaign_with_dayparting) == (CampaignStatus.PAUSED, PauseReason.DAYPARTING)

    clock.move_to("2026-03-21 09:00:00")  # Saturday: no window
    services.enforce_dayparting(actor="job:enforce_dayparting")
    assert status_of(campaign_with_dayparting) == (CampaignStatus.PAUSED, PauseReason.DAYPARTING)

    clock.move_to("2026-03-23 09:00:00")  # Monday 09:00
    services.enforce_dayparting(actor="job:enforce_dayparting")
    assert status_of(campaign_with_dayparting) == (CampaignStatus.ACTIVE, "")


def test_dayparting_job_leaves_campaigns_without_windows_alone(active_campaign: Campaign) -> None:
    Campaign.objects.filter(pk=active_campaign.pk).update(daily_budget=Decimal("0.00"))
    report = services.enforce_dayparting(actor="job:enforce_dayparting")
    assert report.changes.total == 0  # a budget pause is the 5-minute check's business
    assert status_of(active_campaign) == (CampaignStatus.ACTIVE, "")


def test_a_window_added_later_takes_effect_on_reevaluation(active_campaign: Campaign) -> None:
    DaypartingScheduleFactory.create(
        campaign=active_campaign, day_of_week=TODAY.weekday(), start_hour=0, end_hour=6
    )
    changes = services.reevaluate_campaigns([active_campaign.pk], actor="user:ops")
    assert changes.total == 1
    assert status_of(active_campaign) == (CampaignStatus.PAUSED, PauseReason.DAYPARTING)


def test_a_campaign_past_its_end_date_completes(brand: Brand, clock: FrozenDateTimeFactory) -> None:
    campaign = CampaignFactory.create(brand=brand, end_date=TODAY)
    services.check_budgets(actor="job:test")
    assert status_of(campaign) == (CampaignStatus.ACTIVE, "")

    clock.move_to("2026-03-19 00:00:00")
    services.reset_budgets(actor="job:test")
    assert status_of(campaign) == (CampaignStatus.COMPLETED, "")


def test_a_campaign_starts_on_its_start_date(brand: Brand, clock: FrozenDateTimeFactory) -> None:
    campaign = CampaignFactory.create(brand=brand, start_date=date(2026, 3, 19))
    services.check_budgets(actor="job:test")
    assert status_of(campaign) == (CampaignStatus.PAUSED, PauseReason.NOT_STARTED)

    clock.move_to("2026-03-19 00:00:00")
    services.reset_budgets(actor="job:test")
    assert status_of(campaign) == (CampaignStatus.ACTIVE, "")


def test_a_zero_budget_means_may_not_spend(brand: Brand) -> None:
    campaign = CampaignFactory.create(brand=brand, daily_budget=Decimal("0.00"))
    services.check_budgets(actor="job:test")
    assert status_of(campaign) == (CampaignStatus.PAUSED, PauseReason.DAILY_BUDGET)


@pytest.mark.parametrize("moment", ["2026-03-18 23:59:59", "2026-03-19 00:00:00"])
def test_jobs_take_an_explicit_now(campaign_near_daily_limit: Campaign, moment: str) -> None:
    services.record_spend(campaign_near_daily_limit, "1.00", TODAY, 10)
    now = datetime.fromisoformat(moment + "+00:00")
    report = services.reset_budgets(actor="job:test", now=now)
    expected = (
        (CampaignStatus.PAUSED, PauseReason.DAILY_BUDGET)
        if now.date() == TODAY
        else (CampaignStatus.ACTIVE, "")
    )
    assert status_of(campaign_near_daily_limit) == expected
    assert report.today == now.date()


def test_the_checks_running_totals_stay_exact_across_checks_midnight_and_month_end(
    multiple_campaigns: list[Campaign], clock: FrozenDateTimeFactory
) -> None:
    """The check adds only rows new since its last run, yet always equals a full recount."""

    def full_recount(campaign: Campaign, today: date) -> tuple[Decimal, Decimal]:
        month = today.replace(day=1)
        return spends_total_between(campaign, today, today), spends_total_between(campaign, month, today)

    def spends_total_between(campaign: Campaign, first: date, last: date) -> Decimal:
        rows = Spend.objects.filter(campaign=campaign, date__gte=first, date__lte=last)
        return sum((s.amount for s in rows), Decimal("0.00"))

    steps = [
        ("2026-03-30 22:00:00", date(2026, 3, 30)),
        ("2026-03-30 23:59:00", date(2026, 3, 29)),  # late spend for the day before
        ("2026-03-31 00:04:00", date(2026, 3, 30)),  # late spend for yesterday, after midnight
        ("2026-03-31 12:00:00", date(2026, 3, 31)),
        ("2026-04-01 00:05:00", date(2026, 3, 31)),  # last month's spend, after the month turned
        ("2026-04-01 09:00:00", date(2026, 4, 1)),
    ]
    for step, (moment, spend_day) in enumerate(steps):
        clock.move_to(moment)
        for index, campaign in enumerate(multiple_campaigns):
            services.record_spend(campaign, f"{index + 1}.{step}1", spend_day, 0)
        # and one row written around the services: the check must find it too
        SpendFactory.create(
            campaign=multiple_campaigns[step % 5], amount=Decimal("0.07"), date=spend_day, hour=0
        )
        services.check_budgets(actor="job:check_campaign_budgets")
        today = date.fromisoformat(moment[:10])
        for campaign in multiple_campaigns:
            campaign.refresh_from_db()
            assert (campaign.daily_spend, campaign.monthly_spend) == full_recount(campaign, today), moment


# --- record_spend: one round trip on PostgreSQL ----------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_spend_that_changes_no_status_is_one_statement_and_crossing_a_budget_still_pauses() -> None:
    campaign = CampaignFactory.create(daily_budget=Decimal("10.00"))

    with CaptureQueriesContext(connection) as ordinary:
        services.record_spend(campaign, "4.00", TODAY, 9, "ordinary")
    with CaptureQueriesContext(connection) as crossing:
        services.record_spend(campaign, "6.00", TODAY, 10, "crossing")
    services.record_spend(campaign, "6.00", TODAY, 10, "crossing")  # sent again: stored once

    # Stored, counted and committed by one statement; the crossing one took the full path.
    assert len(ordinary.captured_queries) == 1
    assert len(crossing.captured_queries) > 1
    assert status_of(campaign) == (CampaignStatus.PAUSED, PauseReason.DAILY_BUDGET)
    assert campaign.daily_spend == Decimal("10.00")
    keys = list(Spend.objects.filter(campaign=campaign).values_list("external_id", flat=True))
    assert len(keys) == 2
    assert set(keys) == {"crossing", "ordinary"}
    assert CampaignStatusChange.objects.filter(campaign=campaign).count() == 1


@pytest.mark.postgres
def test_the_full_path_after_a_one_statement_attempt_leaves_the_callers_transaction_usable(
    campaign_near_daily_limit: Campaign,
) -> None:
    # pytest-django holds this test in a transaction: the attempt runs in a savepoint.
    with transaction.atomic():
        services.record_spend(campaign_near_daily_limit, "5.00", TODAY, 12, "over")
        services.record_spend(campaign_near_daily_limit, "5.00", TODAY, 12, "over")
        assert Spend.objects.filter(external_id="over").count() == 1

    assert status_of(campaign_near_daily_limit) == (CampaignStatus.PAUSED, PauseReason.DAILY_BUDGET)

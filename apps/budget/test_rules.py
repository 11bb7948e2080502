"""The status rule: each precedence step, the edges, and Python and SQL agreeing on every case."""

from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import combinations

import pytest

from apps.budget import services
from apps.budget.choices import CampaignStatus, PauseReason
from apps.budget.models import Brand, Campaign, DaypartingSchedule
from apps.budget.rules import (
    ACTIVE,
    COMPLETED,
    PRECEDENCE,
    CampaignFacts,
    Decision,
    Moment,
    Spending,
    Window,
    decide_status,
    paused,
)

# Wednesday 2026-03-18, 12:30 UTC.
NOW = datetime.fromisoformat("2026-03-18T12:30:00+00:00")
MOMENT = Moment.at(NOW)
TODAY = MOMENT.today
YESTERDAY = TODAY - timedelta(days=1)
LAST_MONTH = date(2026, 2, 1)

EXPECTED_ORDER = [
    COMPLETED,
    paused(PauseReason.MANUAL),
    paused(PauseReason.BRAND_INACTIVE),
    paused(PauseReason.NOT_STARTED),
    paused(PauseReason.BRAND_MONTHLY_BUDGET),
    paused(PauseReason.BRAND_DAILY_BUDGET),
    paused(PauseReason.MONTHLY_BUDGET),
    paused(PauseReason.DAILY_BUDGET),
    paused(PauseReason.DAYPARTING),
]
CONDITIONS = len(EXPECTED_ORDER)


def under_budget(variant: int = 0) -> Spending:
    """Spending below both budgets: one cent under, or far over but counted in a stale period."""
    if variant % 2:
        return Spending(
            daily_budget=Decimal("50.00"),
            monthly_budget=Decimal("500.00"),
            daily_spend=Decimal("80.00"),
            monthly_spend=Decimal("900.00"),
            daily_spend_day=YESTERDAY,
            monthly_spend_month=LAST_MONTH,
        )
    return Spending(
        daily_budget=Decimal("50.00"),
        monthly_budget=Decimal("500.00"),
        daily_spend=Decimal("49.99"),
        monthly_spend=Decimal("499.99"),
        daily_spend_day=TODAY,
        monthly_spend_month=MOMENT.month,
    )


def reaching(spending: Spending, *, daily: bool, monthly: bool) -> Spending:
    """The same spending with the chosen budgets reached exactly (spend == budget)."""
    if daily:
        spending = replace(spending, daily_spend=spending.daily_budget, daily_spend_day=TODAY)
    if monthly:
        spending = replace(spending, monthly_spend=spending.monthly_budget, monthly_spend_month=MOMENT.month)
    return spending


def facts_for(conditions: frozenset[int], variant: int = 0) -> CampaignFacts:
    """Facts in which exactly the given precedence conditions hold (numbered as EXPECTED_ORDER).

    `variant` picks among equivalent ways to make a condition false or true, so that stale
    periods, empty schedules and both ways of being completed are all covered.
    """
    completed_by_status = 0 in conditions and (3 in conditions or variant % 3 == 0) and 1 not in conditions
    if completed_by_status:
        status, reason = CampaignStatus.COMPLETED, PauseReason.NONE
    elif 1 in conditions:
        status, reason = CampaignStatus.PAUSED, PauseReason.MANUAL
    elif variant % 2:
        # A reason left over from an earlier evaluation must not stick.
        status, reason = CampaignStatus.PAUSED, PauseReason.DAILY_BUDGET
    else:
        status, reason = CampaignStatus.ACTIVE, PauseReason.NONE
    if 3 in conditions:
        start = TODAY + timedelta(days=1)
    elif variant % 3 == 2 and 0 not in conditions:
        start = TODAY  # the first day already runs
    else:
        start = TODAY - timedelta(days=10)
    end: date | None = None
    if 0 in conditions and not completed_by_status:
        end = YESTERDAY
    elif variant % 3 == 1 and 3 not in conditions:
        end = TODAY  # the last day still runs
    windows: tuple[Window, ...]
    if 8 in conditions:
        windows = (Window(MOMENT.weekday, 13, 24), Window((MOMENT.weekday + 1) % 7, 0, 24))
    elif variant % 2:
        windows = (Window(MOMENT.weekday, 12, 13),)  # covers 12:30, start hour inclusive
    else:
        windows = ()
    return CampaignFacts(
        status=status,
        pause_reason=reason,
        start_date=start,
        end_date=end,
        campaign=reaching(under_budget(variant), daily=7 in conditions, monthly=6 in conditions),
        brand=reaching(under_budget(variant + 1), daily=5 in conditions, monthly=4 in conditions),
        brand_is_active=2 not in conditions,
        dayparting=windows,
    )


ALL_CONDITION_SETS = [
    frozenset(i for i in range(CONDITIONS) if mask >> i & 1) for mask in range(2**CONDITIONS)
]


def expected(conditions: frozenset[int]) -> Decision:
    return EXPECTED_ORDER[min(conditions)] if conditions else ACTIVE


@pytest.mark.unit
def test_the_precedence_list_is_the_one_spec_states() -> None:
    assert [step.decision for step in PRECEDENCE] == EXPECTED_ORDER


@pytest.mark.unit
@pytest.mark.parametrize("step", range(CONDITIONS), ids=[d.reason or d.status for d in EXPECTED_ORDER])
def test_each_step_alone_decides(step: int) -> None:
    assert decide_status(facts_for(frozenset({step})), MOMENT) == EXPECTED_ORDER[step]


@pytest.mark.unit
@pytest.mark.parametrize(("higher", "lower"), list(combinations(range(CONDITIONS), 2)))
def test_a_higher_step_wins_over_a_lower_one(higher: int, lower: int) -> None:
    assert decide_status(facts_for(frozenset({higher, lower})), MOMENT) == EXPECTED_ORDER[higher]


@pytest.mark.unit
@pytest.mark.parametrize("variant", range(6))
def test_every_combination_decides_by_precedence(variant: int) -> None:
    for conditions in ALL_CONDITION_SETS:
        assert decide_status(facts_for(conditions, variant), MOMENT) == expected(conditions), conditions


@pytest.mark.unit
@pytest.mark.parametrize(
    ("spend", "budget", "reached"),
    [
        (Decimal("99.99"), Decimal("100.00"), False),  # one cent under
        (Decimal("100.00"), Decimal("100.00"), True),  # exactly at the budget
        (Decimal("100.01"), Decimal("100.00"), True),
        (Decimal("0.00"), Decimal("0.00"), True),  # a budget of 0 means "may not spend"
    ],
)
def test_budget_is_reached_at_or_over_it(spend: Decimal, budget: Decimal, reached: bool) -> None:
    spending = Spending(
        daily_budget=budget,
        monthly_budget=Decimal("1000.00"),
        daily_spend=spend,
        monthly_spend=spend,
        daily_spend_day=TODAY,
        monthly_spend_month=MOMENT.month,
    )
    assert spending.daily_reached(MOMENT) is reached


@pytest.mark.unit
def test_yesterdays_aggregate_counts_nothing_today() -> None:
    spending = Spending(
        daily_budget=Decimal("10.00"),
        monthly_budget=Decimal("1000.00"),
        daily_spend=Decimal("10.00"),
        daily_spend_day=YESTERDAY,
        monthly_spend=Decimal("10.00"),
        monthly_spend_month=MOMENT.month,
    )
    assert spending.daily_used(MOMENT) == Decimal("0.00")
    assert not spending.daily_reached(MOMENT)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("window", "at", "covered"),
    [
        (Window(2, 0, 1), "2026-03-18T00:00:00", True),  # hour 0
        (Window(2, 0, 1), "2026-03-18T01:00:00", False),  # end hour is exclusive
        (Window(2, 23, 24), "2026-03-18T23:59:59", True),  # end_hour 24: until midnight
        (Window(2, 23, 24), "2026-03-19T00:00:00", False),  # midnight belongs to the next day
        (Window(2, 9, 17), "2026-03-18T08:59:59", False),
        (Window(2, 9, 17), "2026-03-18T09:00:00", True),  # start hour is inclusive
        (Window(2, 9, 17), "2026-03-18T16:59:59", True),
        (Window(2, 9, 17), "2026-03-18T17:00:00", False),
        (Window(6, 0, 24), "2026-03-22T12:00:00", True),  # Sunday is 6
    ],
)
def test_dayparting_window_edges(window: Window, at: str, covered: bool) -> None:
    moment = Moment.at(datetime.fromisoformat(at + "+00:00"))
    facts = replace(facts_for(frozenset()), dayparting=(window,))
    expected_decision = ACTIVE if covered else paused(PauseReason.DAYPARTING)
    assert decide_status(facts, moment) == expected_decision


@pytest.mark.unit
def test_end_date_today_still_runs_and_yesterday_completes() -> None:
    assert decide_status(replace(facts_for(frozenset()), end_date=TODAY), MOMENT) == ACTIVE
    assert decide_status(replace(facts_for(frozenset()), end_date=YESTERDAY), MOMENT) == COMPLETED


def _store(facts: CampaignFacts, index: int) -> Campaign:
    brand = Brand.objects.create(
        name=f"Agreement brand {index}",
        is_active=facts.brand_is_active,
        daily_budget=facts.brand.daily_budget,
        monthly_budget=facts.brand.monthly_budget,
        daily_spend=facts.brand.daily_spend,
        monthly_spend=facts.brand.monthly_spend,
        daily_spend_day=facts.brand.daily_spend_day,
        monthly_spend_month=facts.brand.monthly_spend_month,
    )
    campaign = Campaign.objects.create(
        brand=brand,
        name=f"Agreement campaign {index}",
        status=facts.status,
        pause_reason=facts.pause_reason,
        start_date=facts.start_date,
        end_date=facts.end_date,
        daily_budget=facts.campaign.daily_budget,
        monthly_budget=facts.campaign.monthly_budget,
        daily_spend=facts.campaign.daily_spend,
        monthly_spend=facts.campaign.monthly_spend,
        daily_spend_day=facts.campaign.daily_spend_day,
        monthly_spend_month=facts.campaign.monthly_spend_month,
    )
    DaypartingSchedule.objects.bulk_create(
        DaypartingSchedule(
            campaign=campaign, day_of_week=w.day_of_week, start_hour=w.start_hour, end_hour=w.end_hour
        )
        for w in facts.dayparting
    )
    return campaign


@pytest.mark.django_db
@pytest.mark.parametrize("variant", [0, 1, 2])
def test_sql_form_agrees_with_the_function_on_every_combination(variant: int) -> None:
    """The jobs' SQL and the Python function give the same status and reason for all 512 cases."""
    # given: one stored campaign (with its own brand) per combination of conditions
    stored: dict[int, Decision] = {}
    for index, conditions in enumerate(ALL_CONDITION_SETS):
        facts = facts_for(conditions, variant)
        if facts.end_date is not None and facts.end_date < facts.start_date:
            continue  # not-started and ended at once cannot be stored (end_date >= start_date)
        stored[_store(facts, index).pk] = decide_status(facts, MOMENT)
    assert len(stored) > 400

    # when: the set-based SQL applies the rule to all of them
    services.reevaluate_campaigns(stored, actor="test", now=NOW)

    # then: every campaign holds exactly what the function decided
    in_db = {
        pk: Decision(CampaignStatus(status), PauseReason(reason))
        for pk, status, reason in Campaign.objects.values_list("pk", "status", "pause_reason")
    }
    disagreements = {pk: (want, in_db[pk]) for pk, want in stored.items() if in_db[pk] != want}
    assert disagreements == {}

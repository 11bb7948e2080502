"""The status rule (SPEC, "The status rule"): one precedence list, two forms.

`decide_status` applies the list to plain values in Python (services use it for the one campaign
they hold). `status_rule_sql` turns the same list into SQL `CASE` expressions for the set-based
jobs. Each step carries both forms side by side, and `test_rules.py` proves that the two agree on
every combination of conditions.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple

from apps.budget.choices import CampaignStatus, PauseReason
from apps.budget.clock import month_start
from apps.budget.money import ZERO


class Decision(NamedTuple):
    status: CampaignStatus
    reason: PauseReason


ACTIVE = Decision(CampaignStatus.ACTIVE, PauseReason.NONE)
COMPLETED = Decision(CampaignStatus.COMPLETED, PauseReason.NONE)


def paused(reason: PauseReason) -> Decision:
    return Decision(CampaignStatus.PAUSED, reason)


@dataclass(frozen=True, slots=True)
class Moment:
    """The UTC time the rule is applied at, broken into what the rule looks at."""

    today: date
    month: date
    weekday: int
    hour: int

    @classmethod
    def at(cls, now: datetime) -> "Moment":
        today = now.date()
        return cls(today=today, month=month_start(today), weekday=today.weekday(), hour=now.hour)


@dataclass(frozen=True, slots=True)
class Window:
    day_of_week: int
    start_hour: int
    end_hour: int

    def covers(self, weekday: int, hour: int) -> bool:
        return self.day_of_week == weekday and self.start_hour <= hour < self.end_hour


@dataclass(frozen=True, slots=True)
class Spending:
    """A budget and the aggregates against it, with the period each aggregate counts."""

    daily_budget: Decimal
    monthly_budget: Decimal
    daily_spend: Decimal
    monthly_spend: Decimal
    daily_spend_day: date
    monthly_spend_month: date

    def daily_used(self, moment: Moment) -> Decimal:
        # An aggregate still counting an earlier day counts nothing today (missed reset).
        return self.daily_spend if self.daily_spend_day == moment.today else ZERO

    def monthly_used(self, moment: Moment) -> Decimal:
        return self.monthly_spend if self.monthly_spend_month == moment.month else ZERO

    def daily_reached(self, moment: Moment) -> bool:
        return self.daily_used(moment) >= self.daily_budget

    def monthly_reached(self, moment: Moment) -> bool:
        return self.monthly_used(moment) >= self.monthly_budget


@dataclass(frozen=True, slots=True)
class CampaignFacts:
    """Everything the rule reads about one campaign and its brand."""

    status: CampaignStatus
    pause_reason: PauseReason
    start_date: date
    end_date: date | None
    campaign: Spending
    brand: Spending
    brand_is_active: bool = True
    dayparting: Sequence[Window] = field(default=())


@dataclass(frozen=True, slots=True)
class Step:
    """One line of the precedence list: when it applies (Python and SQL) and what it decides.

    `sql` is a boolean SQL condition over the aliases `c` (campaign) and `b` (brand) with the
    named parameters of `rule_params` and `{dayparting}` for the schedule table.
    """

    decision: Decision
    applies: Callable[[CampaignFacts, Moment], bool]
    sql: str


def _reached_sql(spend: str, period_column: str, period_param: str, budget: str) -> str:
    return f"(CASE WHEN {period_column} = %({period_param})s THEN {spend} ELSE 0 END) >= {budget}"


BRAND_MONTHLY_REACHED_SQL = _reached_sql(
    "b.monthly_spend", "b.monthly_spend_month", "month", "b.monthly_budget"
)
BRAND_DAILY_REACHED_SQL = _reached_sql("b.daily_spend", "b.daily_spend_day", "today", "b.daily_budget")
# The brand `b` is at or over a budget: every one of its campaigns must stop.
BRAND_REACHED_SQL = f"({BRAND_MONTHLY_REACHED_SQL}) OR ({BRAND_DAILY_REACHED_SQL})"


def _is_completed(facts: CampaignFacts, moment: Moment) -> bool:
    if facts.status == CampaignStatus.COMPLETED:
        return True  # terminal: only a person revives it (services.resume_campaign)
    return facts.end_date is not None and facts.end_date < moment.today


def _outside_dayparting(facts: CampaignFacts, moment: Moment) -> bool:
    if not facts.dayparting:
        return False
    return not any(window.covers(moment.weekday, moment.hour) for window in facts.dayparting)


PRECEDENCE: tuple[Step, ...] = (
    Step(
        COMPLETED,
        _is_completed,
        "c.status = 'COMPLETED' OR (c.end_date IS NOT NULL AND c.end_date < %(today)s)",
    ),
    Step(
        paused(PauseReason.MANUAL),
        lambda f, m: f.status == CampaignStatus.PAUSED and f.pause_reason == PauseReason.MANUAL,
        "c.status = 'PAUSED' AND c.pause_reason = 'MANUAL'",
    ),
    Step(
        paused(PauseReason.BRAND_INACTIVE),
        lambda f, m: not f.brand_is_active,
        "NOT b.is_active",
    ),
    Step(
        paused(PauseReason.NOT_STARTED),
        lambda f, m: f.start_date > m.today,
        "c.start_date > %(today)s",
    ),
    Step(
        paused(PauseReason.BRAND_MONTHLY_BUDGET),
        lambda f, m: f.brand.monthly_reached(m),
        BRAND_MONTHLY_REACHED_SQL,
    ),
    Step(
        paused(PauseReason.BRAND_DAILY_BUDGET),
        lambda f, m: f.brand.daily_reached(m),
        BRAND_DAILY_REACHED_SQL,
    ),
    Step(
        paused(PauseReason.MONTHLY_BUDGET),
        lambda f, m: f.campaign.monthly_reached(m),
        _reached_sql("c.monthly_spend", "c.monthly_spend_month", "month", "c.monthly_budget"),
    ),
    Step(
        paused(PauseReason.DAILY_BUDGET),
        lambda f, m: f.campaign.daily_reached(m),
        _reached_sql("c.daily_spend", "c.daily_spend_day", "today", "c.daily_budget"),
    ),
    Step(
        paused(PauseReason.DAYPARTING),
        _outside_dayparting,
        "EXISTS (SELECT 1 FROM {dayparting} w WHERE w.campaign_id = c.id)"
        " AND NOT EXISTS (SELECT 1 FROM {dayparting} w WHERE w.campaign_id = c.id"
        " AND w.day_of_week = %(weekday)s AND w.start_hour <= %(hour)s AND w.end_hour > %(hour)s)",
    ),
)


def decide_status(facts: CampaignFacts, moment: Moment) -> Decision:
    """The status and pause reason the campaign should have at `moment`."""
    for step in PRECEDENCE:
        if step.applies(facts, moment):
            return step.decision
    return ACTIVE


class RuleSql(NamedTuple):
    """The rule as SQL: `step` picks the first precedence step that applies (0: none applies);
    `outcomes` is a common table expression mapping each step to its status and reason, so that
    the conditions are evaluated once per campaign, not once per output column."""

    step: str
    outcomes: str


def status_rule_sql(dayparting_table: str) -> RuleSql:
    """The precedence list as SQL, in the order of PRECEDENCE."""
    whens = " ".join(
        f"WHEN ({step.sql.format(dayparting=dayparting_table)}) THEN {number}"
        for number, step in enumerate(PRECEDENCE, start=1)
    )
    decisions = [ACTIVE, *(step.decision for step in PRECEDENCE)]
    rows = ", ".join(
        f"({number}, '{decision.status.value}', '{decision.reason.value}')"
        for number, decision in enumerate(decisions)
    )
    return RuleSql(
        step=f"CASE {whens} ELSE 0 END", outcomes=f"outcomes (step, status, reason) AS (VALUES {rows})"
    )


def rule_params(moment: Moment) -> dict[str, object]:
    """The named parameters that `status_rule_sql` expects."""
    return {"today": moment.today, "month": moment.month, "weekday": moment.weekday, "hour": moment.hour}

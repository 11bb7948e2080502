"""The naive baseline: the four jobs written the obvious way with the ORM, to measure the set-based
jobs against (issue 7: "load each campaign, decide in Python, save() per row").

The obvious way, as a first version of a Celery task would be written: iterate over the campaigns
(`.iterator()`, so at least memory stays flat), read each one's brand and dayparting rows through
the relations (a query each), apply the very same rule (`rules.decide_status`), and `save()` each
changed row with its audit row, in autocommit (each save its own transaction, as in a task body
without `atomic`); the check sums each campaign's Spend rows with one aggregate query per campaign.
It has the jobs' semantics (a roll-over only of stale aggregates, COMPLETED left alone), not
their locking. It runs over the campaigns with ids up to `limit` (the first `limit / 10` brands,
see `bench.dataset`), so it can be measured on a subset of a large data set.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Exists, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from apps.budget.choices import CampaignStatus, PauseReason
from apps.budget.models import Brand, Campaign, CampaignStatusChange, DaypartingSchedule, Spend
from apps.budget.money import ZERO
from apps.budget.rules import CampaignFacts, Moment, Window, decide_status
from bench.dataset import brand_of

CHUNK = 2_000


@dataclass(slots=True)
class Saved:
    """Rows the naive job saved."""

    aggregates: int = 0
    statuses: int = 0

    def describe(self) -> str:
        return f"{self.aggregates} aggregate saves, {self.statuses} status changes"


def _roll(owner: Brand | Campaign, moment: Moment, *, daily: bool, monthly: bool) -> bool:
    changed = False
    if daily and owner.daily_spend_day < moment.today:
        owner.daily_spend, owner.daily_spend_day = ZERO, moment.today
        changed = True
    if monthly and owner.monthly_spend_month < moment.month:
        owner.monthly_spend, owner.monthly_spend_month = ZERO, moment.month
        changed = True
    return changed


def _campaigns(limit: int, *, dayparted_only: bool = False) -> Iterator[Campaign]:
    queryset: QuerySet[Campaign] = Campaign.objects.filter(pk__lte=limit)
    if dayparted_only:
        queryset = queryset.filter(Exists(DaypartingSchedule.objects.filter(campaign=OuterRef("pk"))))
    return queryset.order_by("pk").iterator(chunk_size=CHUNK)


def _brands(limit: int) -> Iterator[Brand]:
    return Brand.objects.filter(pk__lte=brand_of(limit)).order_by("pk").iterator(chunk_size=CHUNK)


def _apply_rule(campaign: Campaign, moment: Moment, *, actor: str, now: datetime) -> bool:
    if campaign.status == CampaignStatus.COMPLETED:
        return False
    brand = campaign.brand  # one query per campaign: the obvious way
    facts = CampaignFacts(
        status=CampaignStatus(campaign.status),
        pause_reason=PauseReason(campaign.pause_reason),
        start_date=campaign.start_date,
        end_date=campaign.end_date,
        campaign=campaign.spending(),
        brand=brand.spending(),
        brand_is_active=brand.is_active,
        dayparting=tuple(Window(w.day_of_week, w.start_hour, w.end_hour) for w in campaign.dayparting.all()),
    )
    decision = decide_status(facts, moment)
    if (campaign.status, campaign.pause_reason) == (decision.status, decision.reason):
        return False
    CampaignStatusChange.objects.create(
        campaign=campaign,
        old_status=campaign.status,
        new_status=decision.status,
        reason=decision.reason,
        actor=actor,
        changed_at=now,
    )
    campaign.status, campaign.pause_reason = decision.status, decision.reason
    campaign.save()
    return True


def reset(*, daily: bool, monthly: bool, limit: int, actor: str) -> Saved:
    """The daily / monthly reset: roll each stale aggregate and save it, then the rule for each."""
    now = timezone.now()
    moment = Moment.at(now)
    saved = Saved()
    for brand in _brands(limit):
        if _roll(brand, moment, daily=daily, monthly=monthly):
            brand.save()
            saved.aggregates += 1
    for campaign in _campaigns(limit):
        if _roll(campaign, moment, daily=daily, monthly=monthly):
            campaign.save()
            saved.aggregates += 1
        saved.statuses += _apply_rule(campaign, moment, actor=actor, now=now)
    return saved


def enforce_dayparting(*, limit: int, actor: str) -> Saved:
    """The hourly job: the rule for each campaign that has dayparting rows."""
    now = timezone.now()
    moment = Moment.at(now)
    saved = Saved()
    for campaign in _campaigns(limit, dayparted_only=True):
        saved.statuses += _apply_rule(campaign, moment, actor=actor, now=now)
    return saved


def check(*, limit: int, actor: str) -> Saved:
    """The 5-minute check: each campaign's aggregates summed from its Spend rows (one query per
    campaign) and each brand's from its campaigns' (one query per brand), saved where they differ,
    then the rule for each campaign."""
    now = timezone.now()
    moment = Moment.at(now)
    saved = Saved()
    for campaign in _campaigns(limit):
        sums = Spend.objects.filter(
            campaign_id=campaign.pk, date__gte=moment.month, date__lte=moment.today
        ).aggregate(daily=Sum("amount", filter=Q(date=moment.today)), monthly=Sum("amount"))
        if _differs(campaign, sums, moment):
            saved.aggregates += 1
    for brand in _brands(limit):
        sums = Campaign.objects.filter(brand_id=brand.pk).aggregate(
            daily=Sum("daily_spend"), monthly=Sum("monthly_spend")
        )
        if _differs(brand, sums, moment):
            saved.aggregates += 1
    for campaign in _campaigns(limit):
        saved.statuses += _apply_rule(campaign, moment, actor=actor, now=now)
    return saved


def _differs(owner: Brand | Campaign, sums: dict[str, Decimal | None], moment: Moment) -> bool:
    """Set the owner's aggregates to `sums` of the current day and month; save when they differed."""
    daily, monthly = sums["daily"] or ZERO, sums["monthly"] or ZERO
    current = (owner.daily_spend, owner.daily_spend_day, owner.monthly_spend, owner.monthly_spend_month)
    if current == (daily, moment.today, monthly, moment.month):
        return False
    owner.daily_spend, owner.daily_spend_day = daily, moment.today
    owner.monthly_spend, owner.monthly_spend_month = monthly, moment.month
    owner.save()
    return True

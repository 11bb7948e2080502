"""The naive baseline: the four jobs written the obvious way with the ORM, to measure the set-based
jobs against (issue 7: "load each campaign, decide in Python, save() per row").

Not a straw man: it reads campaigns in chunks with their brand and dayparting prefetched, holds
one transaction and the same brand-table lock as the real jobs, and applies the very same rule
(`rules.decide_status`). What makes it naive is the shape: one Python decision and one `save()`
(plus one audit `create()`) per changed row, and for the check one aggregate query per campaign.
It runs over the campaigns with ids up to `limit` (the first `limit / 10` brands, see
`bench.dataset`), so it can be measured on a subset of a large data set.
"""

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from apps.budget.choices import CampaignStatus, PauseReason
from apps.budget.models import Brand, Campaign, CampaignStatusChange, DaypartingSchedule, Spend
from apps.budget.money import ZERO
from apps.budget.rules import CampaignFacts, Moment, Window, decide_status
from apps.budget.services import lock_all_brands
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


AGGREGATES = ["daily_spend", "daily_spend_day", "monthly_spend", "monthly_spend_month"]


def _campaigns(limit: int, *, dayparted_only: bool = False) -> Iterator[Campaign]:
    queryset: QuerySet[Campaign] = Campaign.objects.filter(pk__lte=limit)
    if dayparted_only:
        queryset = queryset.filter(Exists(DaypartingSchedule.objects.filter(campaign=OuterRef("pk"))))
    return queryset.order_by("pk").prefetch_related("dayparting").iterator(chunk_size=CHUNK)


def _brands(limit: int) -> dict[int, Brand]:
    return {brand.pk: brand for brand in Brand.objects.filter(pk__lte=brand_of(limit))}


def _apply_rule(campaign: Campaign, brand: Brand, moment: Moment, *, actor: str, now: datetime) -> bool:
    if campaign.status == CampaignStatus.COMPLETED:
        return False
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
    campaign.save(update_fields=["status", "pause_reason"])
    return True


def reset(*, daily: bool, monthly: bool, limit: int, actor: str) -> Saved:
    """The daily / monthly reset: roll each stale aggregate, save it, then the rule for each."""
    now = timezone.now()
    moment = Moment.at(now)
    saved = Saved()
    with transaction.atomic():
        lock_all_brands()
        brands = _brands(limit)
        for brand in brands.values():
            if _roll(brand, moment, daily=daily, monthly=monthly):
                brand.save(update_fields=AGGREGATES)
                saved.aggregates += 1
        for campaign in _campaigns(limit):
            if _roll(campaign, moment, daily=daily, monthly=monthly):
                campaign.save(update_fields=AGGREGATES)
                saved.aggregates += 1
            saved.statuses += _apply_rule(campaign, brands[campaign.brand_id], moment, actor=actor, now=now)
    return saved


def enforce_dayparting(*, limit: int, actor: str) -> Saved:
    """The hourly job: the rule for each campaign that has dayparting rows."""
    now = timezone.now()
    moment = Moment.at(now)
    saved = Saved()
    with transaction.atomic():
        lock_all_brands()
        brands = _brands(limit)
        for campaign in _campaigns(limit, dayparted_only=True):
            saved.statuses += _apply_rule(campaign, brands[campaign.brand_id], moment, actor=actor, now=now)
    return saved


def check(*, limit: int, actor: str) -> Saved:
    """The 5-minute check: each campaign's aggregates summed from its Spend rows (one query per
    campaign), each brand's from its campaigns, saved where they differ, then the rule for each."""
    now = timezone.now()
    moment = Moment.at(now)
    saved = Saved()
    with transaction.atomic():
        lock_all_brands()
        brands = _brands(limit)
        brand_totals: dict[int, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
        for campaign in _campaigns(limit):
            sums = Spend.objects.filter(
                campaign_id=campaign.pk, date__gte=moment.month, date__lte=moment.today
            ).aggregate(daily=Sum("amount", filter=Q(date=moment.today)), monthly=Sum("amount"))
            daily, monthly = sums["daily"] or ZERO, sums["monthly"] or ZERO
            current = (campaign.daily_spend, campaign.daily_spend_day, campaign.monthly_spend)
            if current != (daily, moment.today, monthly) or campaign.monthly_spend_month != moment.month:
                campaign.daily_spend, campaign.daily_spend_day = daily, moment.today
                campaign.monthly_spend, campaign.monthly_spend_month = monthly, moment.month
                campaign.save(update_fields=AGGREGATES)
                saved.aggregates += 1
            totals = brand_totals[campaign.brand_id]
            totals[0] += daily
            totals[1] += monthly
        for brand in brands.values():
            daily, monthly = brand_totals[brand.pk]
            current = (brand.daily_spend, brand.daily_spend_day, brand.monthly_spend)
            if current != (daily, moment.today, monthly) or brand.monthly_spend_month != moment.month:
                brand.daily_spend, brand.daily_spend_day = daily, moment.today
                brand.monthly_spend, brand.monthly_spend_month = monthly, moment.month
                brand.save(update_fields=AGGREGATES)
                saved.aggregates += 1
        for campaign in _campaigns(limit):
            saved.statuses += _apply_rule(campaign, brands[campaign.brand_id], moment, actor=actor, now=now)
    return saved

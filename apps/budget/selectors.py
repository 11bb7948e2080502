"""Read queries (the other half of "services write, selectors read"): what the admin shows.

Totals are summed in SQL over the integer-cents column, so they are exact on every database; the
money field turns the sum back into a two-place Decimal.
"""

from datetime import date, timedelta
from decimal import Decimal
from typing import NamedTuple

from django.db import connection
from django.db.models import Model, QuerySet, Sum

from apps.budget.models import CampaignStatusChange, Spend
from apps.budget.money import ZERO


class HourSpend(NamedTuple):
    hour: int
    amount: Decimal


class DaySpend(NamedTuple):
    day: date
    amount: Decimal


def spend_by_hour(*, campaign_id: int, day: date) -> list[HourSpend]:
    """The campaign's spend in each hour of `day`, all 24 hours, 0.00 where nothing was spent."""
    rows = (
        Spend.objects.filter(campaign_id=campaign_id, date=day)
        .order_by()
        .values("hour")
        .annotate(total=Sum("amount"))
        .values_list("hour", "total")
    )
    totals: dict[int, Decimal] = dict(rows)
    return [HourSpend(hour, totals.get(hour, ZERO)) for hour in range(24)]


def spend_by_day(*, campaign_id: int, last_day: date, days: int = 30) -> list[DaySpend]:
    """The campaign's spend on each of the `days` days up to `last_day`, oldest first."""
    first_day = last_day - timedelta(days=days - 1)
    rows = (
        Spend.objects.filter(campaign_id=campaign_id, date__gte=first_day, date__lte=last_day)
        .order_by()
        .values("date")
        .annotate(total=Sum("amount"))
        .values_list("date", "total")
    )
    totals: dict[date, Decimal] = dict(rows)
    return [
        DaySpend(day, totals.get(day, ZERO))
        for day in (first_day + timedelta(days=offset) for offset in range(days))
    ]


def status_history(*, campaign_id: int, limit: int) -> QuerySet[CampaignStatusChange]:
    """The campaign's latest status changes, newest first (served by the (campaign, -changed_at) index)."""
    return CampaignStatusChange.objects.filter(campaign_id=campaign_id).order_by("-changed_at", "-id")[:limit]


def estimated_row_count(model: type[Model]) -> int | None:
    """PostgreSQL's own estimate of the table's row count, or None where there is none.

    `pg_class.reltuples` is kept by VACUUM/ANALYZE (autovacuum): reading it costs nothing, where
    `COUNT(*)` over millions of rows reads the whole table. It is -1 before the first ANALYZE.
    """
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", [model._meta.db_table])
        row = cursor.fetchone()
    if row is None or row[0] is None or row[0] < 0:
        return None
    return int(row[0])

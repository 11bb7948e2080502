"""The benchmark's data set: generated as streams of rows and loaded set-based into the real tables.

Shape (for N campaigns and M spend rows):
- N/10 brands, 10 campaigns each (campaign `c` belongs to brand `(c - 1) // 10 + 1`, so the first
  100,000 campaigns are exactly the first 10,000 brands: the naive baseline's subset). 4% of the
  brands have budgets their campaigns exceed, 2% are inactive.
- Campaigns with daily budgets of 50-1,000 and monthly budgets of 25 days of that; 2% paused by a
  person, 2% ended last month (half still marked ACTIVE, for the jobs to complete), 2% not started.
- ~30% with dayparting: Mon-Fri 09-17, every day 06-22, or weekends 10-20 with Friday evening.
- M spend rows of the current UTC month in time order, spread evenly over the hours elapsed so far
  (up to the current hour), each for a random campaign; 7% of the campaigns are paced to overspend
  their monthly budget, the rest spend 5-85% of it. Amounts are integer cents (the stored form).
  They carry no external_id: the jobs never read it, and the key index would only slow the load.

Attributes come from a hash of the row id rather than stored lists, and rows are generated one at
a time into COPY (executemany in chunks on SQLite), so the loader's memory does not grow with M.
After the load one run of the real check job makes the aggregates equal the spend rows and the
statuses follow the rule. A snapshot of the derived columns lets every measured run start from the
same state (`restore`).
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice
from time import perf_counter
from typing import Any

from django.apps import apps
from django.core.management.color import no_style
from django.db import connection, transaction
from django.db.models import Count, Model

from apps.budget.clock import month_start
from apps.budget.models import Brand, Campaign, DaypartingSchedule, Spend

CAMPAIGNS_PER_BRAND = 10
MASK64 = (1 << 64) - 1
SQLITE_CHUNK = 5_000
AGGREGATE_COLUMNS = ("daily_spend", "daily_spend_day", "monthly_spend", "monthly_spend_month")
SNAPSHOT = {
    Campaign._meta.db_table: ("status", "pause_reason", *AGGREGATE_COLUMNS),
    Brand._meta.db_table: AGGREGATE_COLUMNS,
}
MARKER_TABLE = "bench_dataset"

Row = tuple[Any, ...]


def mix(value: int, salt: int) -> int:
    """A well-spread 64-bit hash of (value, salt) (splitmix64): per-row attributes without lists."""
    z = (value * 0x9E3779B97F4A7C15 + (salt + 1) * 0xD1B54A32D192ED03) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def percent(value: int, salt: int) -> int:
    return mix(value, salt) % 100


def brand_of(campaign_id: int) -> int:
    return (campaign_id - 1) // CAMPAIGNS_PER_BRAND + 1


@dataclass(frozen=True, slots=True)
class Shape:
    campaigns: int
    spend_rows: int
    seed: int
    now: datetime

    @property
    def brands(self) -> int:
        return brand_of(self.campaigns)

    @property
    def today(self) -> date:
        return self.now.date()

    @property
    def month(self) -> date:
        return month_start(self.today)

    @property
    def yesterday(self) -> date:
        return self.today - timedelta(days=1)

    @property
    def last_month(self) -> date:
        return month_start(self.month - timedelta(days=1))

    def elapsed_hours(self) -> list[tuple[date, int]]:
        """Every (day, hour) of the month up to the current hour, in order."""
        hours: list[tuple[date, int]] = []
        day = self.month
        while day <= self.today:
            last = self.now.hour if day == self.today else 23
            hours.extend((day, hour) for hour in range(last + 1))
            day += timedelta(days=1)
        return hours


# --- Generated rows ------------------------------------------------------------------------------

BRAND_COLUMNS = (
    "id",
    "name",
    "daily_budget",
    "monthly_budget",
    "daily_spend",
    "daily_spend_day",
    "monthly_spend",
    "monthly_spend_month",
    "is_active",
    "created_at",
)
CAMPAIGN_COLUMNS = (
    "id",
    "brand_id",
    "name",
    "status",
    "pause_reason",
    "daily_budget",
    "monthly_budget",
    "daily_spend",
    "daily_spend_day",
    "monthly_spend",
    "monthly_spend_month",
    "start_date",
    "end_date",
    "created_at",
)
DAYPARTING_COLUMNS = ("id", "campaign_id", "day_of_week", "start_hour", "end_hour")
SPEND_COLUMNS = ("id", "campaign_id", "amount", "date", "hour", "external_id", "created_at")

# (share in percent, windows as (day_of_week, start_hour, end_hour))
DAYPARTING_PATTERNS: tuple[tuple[int, tuple[tuple[int, int, int], ...]], ...] = (
    (60, tuple((day, 9, 17) for day in range(5))),  # Mon-Fri 09-17
    (25, tuple((day, 6, 22) for day in range(7))),  # every day 06-22
    (15, ((4, 18, 24), (5, 10, 20), (6, 10, 20))),  # weekends 10-20 and Friday evening
)
DAYPARTED_PERCENT = 30


def brand_rows(shape: Shape) -> Iterator[Row]:
    for brand_id in range(1, shape.brands + 1):
        # A tight brand's budget is below what its ten campaigns spend: they pause on the brand.
        daily_budget = 1_000_00 if percent(brand_id, 1) < 4 else 20_000_00
        yield (
            brand_id,
            f"Brand {brand_id:07d}",
            daily_budget,
            daily_budget * 25,
            0,
            shape.today,
            0,
            shape.month,
            percent(brand_id, 2) >= 2,
            shape.now,
        )


def campaign_daily_budget(campaign_id: int) -> int:
    return 50_00 + mix(campaign_id, 3) % 950_00


def campaign_rows(shape: Shape) -> Iterator[Row]:
    for campaign_id in range(1, shape.campaigns + 1):
        daily_budget = campaign_daily_budget(campaign_id)
        status, reason = "ACTIVE", ""
        start: date = shape.month - timedelta(days=30)
        end: date | None = None if percent(campaign_id, 5) < 50 else shape.today + timedelta(days=60)
        kind = percent(campaign_id, 4)
        if kind < 2:
            status, reason = "PAUSED", "MANUAL"
        elif kind < 4:
            start, end = shape.month - timedelta(days=60), shape.month - timedelta(days=1)
            status = "COMPLETED" if kind == 3 else "ACTIVE"
        elif kind < 6:
            start, end = shape.today + timedelta(days=10), None
        yield (
            campaign_id,
            brand_of(campaign_id),
            f"Campaign {campaign_id:08d}",
            status,
            reason,
            daily_budget,
            daily_budget * 25,
            0,
            shape.today,
            0,
            shape.month,
            start,
            end,
            shape.now,
        )


def dayparting_rows(shape: Shape) -> Iterator[Row]:
    row_id = 0
    for campaign_id in range(1, shape.campaigns + 1):
        if percent(campaign_id, 8) >= DAYPARTED_PERCENT:
            continue
        pick = percent(campaign_id, 9)
        for share, windows in DAYPARTING_PATTERNS:
            if pick < share:
                for day, start, end in windows:
                    row_id += 1
                    yield (row_id, campaign_id, day, start, end)
                break
            pick -= share


def mean_spend_cents(shape: Shape) -> array[int]:
    """Each campaign's average spend row: 7% overspend their monthly budget, the rest 5-85% of it."""
    rows_per_campaign = max(1, shape.spend_rows // shape.campaigns)
    means = array("q", [0])
    for campaign_id in range(1, shape.campaigns + 1):
        monthly = campaign_daily_budget(campaign_id) * 25
        spread = mix(campaign_id, 6)
        share = 100 + spread % 60 if percent(campaign_id, 7) < 7 else 5 + spread % 80
        means.append(max(1, monthly * share // 100 // rows_per_campaign))
    return means


def spend_rows(shape: Shape, means: array[int], *, after_id: int = 0) -> Iterator[Row]:
    # The generator's own stream, not a secret: random.Random is the right tool.
    rng = random.Random(shape.seed + after_id)  # noqa: S311
    hours = shape.elapsed_hours()
    per_hour, extra = divmod(shape.spend_rows, len(hours))
    spend_id = after_id
    for index, (day, hour) in enumerate(hours):
        created = min(datetime.combine(day, time(hour, 59), tzinfo=UTC), shape.now)
        for _ in range(per_hour + (1 if index < extra else 0)):
            spend_id += 1
            campaign_id = rng.randrange(1, shape.campaigns + 1)
            amount = max(1, means[campaign_id] * rng.randrange(50, 151) // 100)
            yield (spend_id, campaign_id, amount, day, hour, None, created)


# --- Loading ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Loaded:
    table: str
    rows: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def _sqlite_value(value: object) -> Any:
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def copy_rows(table: str, columns: Sequence[str], rows: Iterable[Row]) -> Loaded:
    """Stream rows into `table`: COPY on PostgreSQL, executemany in chunks elsewhere."""
    count = 0
    started = perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            raw = cursor.cursor  # the psycopg 3 cursor under Django's wrapper
            with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
        else:
            placeholders = ", ".join(["%s"] * len(columns))
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"
            iterator = iter(rows)
            while chunk := list(islice(iterator, SQLITE_CHUNK)):
                cursor.executemany(sql, [tuple(_sqlite_value(v) for v in row) for row in chunk])
                count += len(chunk)
    return Loaded(table, count, perf_counter() - started)


def copy_floor(shape: Shape, rows: int) -> Loaded:
    """COPY `rows` more spend rows into the loaded table and roll them back: what the database
    itself takes to insert rows with these indexes (the floor for batch ingestion). The rows are
    generated first, so only the COPY is timed."""
    extra = replace(shape, spend_rows=rows)
    last_id = Spend.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    generated = list(spend_rows(extra, mean_spend_cents(extra), after_id=last_id))
    with transaction.atomic():
        loaded = copy_rows(Spend._meta.db_table, SPEND_COLUMNS, generated)
        transaction.set_rollback(True)
    return loaded


def budget_models() -> list[type[Model]]:
    return list(apps.get_app_config("budget").get_models(include_auto_created=True))


def empty_tables() -> None:
    """Empty every table of the budget app (and restart its ids), as `manage.py flush` would."""
    tables = [model._meta.db_table for model in budget_models()]
    statements = connection.ops.sql_flush(no_style(), tables, reset_sequences=True, allow_cascade=True)
    connection.ops.execute_sql_flush(statements)
    drop_snapshot()


def reset_sequences(models: Sequence[type[Model]]) -> None:
    """Ids were given explicitly: move each id sequence past them (nothing to do on SQLite)."""
    statements = connection.ops.sequence_reset_sql(no_style(), list(models))
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def load(shape: Shape) -> list[Loaded]:
    """Empty the tables and load the data set; returns what each table took."""
    empty_tables()
    loaded = [
        copy_rows(Brand._meta.db_table, BRAND_COLUMNS, brand_rows(shape)),
        copy_rows(Campaign._meta.db_table, CAMPAIGN_COLUMNS, campaign_rows(shape)),
        copy_rows(DaypartingSchedule._meta.db_table, DAYPARTING_COLUMNS, dayparting_rows(shape)),
        copy_rows(Spend._meta.db_table, SPEND_COLUMNS, spend_rows(shape, mean_spend_cents(shape))),
    ]
    reset_sequences([Brand, Campaign, DaypartingSchedule, Spend])
    return loaded


def vacuum(*models: type[Model]) -> None:
    """VACUUM (ANALYZE) on PostgreSQL so that every timed run starts without dead rows to skip and
    with fresh statistics (autovacuum would get there on its own schedule); ANALYZE on SQLite."""
    tables = [model._meta.db_table for model in (models or tuple(budget_models()))]
    with connection.cursor() as cursor:
        for table in tables:
            if connection.vendor == "postgresql":
                cursor.execute(f"VACUUM (ANALYZE) {table}")
            else:
                cursor.execute(f"ANALYZE {table}")


def status_mix() -> dict[str, int]:
    rows = Campaign.objects.order_by().values_list("status", "pause_reason").annotate(n=Count("id"))
    return {f"{status} {reason}".strip(): n for status, reason, n in sorted(rows)}


# --- Snapshot, restore and the work scenarios --------------------------------------------------------


def _snapshot_table(table: str) -> str:
    return f"bench_snapshot_{table}"


def drop_snapshot() -> None:
    with connection.cursor() as cursor:
        for table in SNAPSHOT:
            cursor.execute(f"DROP TABLE IF EXISTS {_snapshot_table(table)}")
        cursor.execute(f"DROP TABLE IF EXISTS {MARKER_TABLE}")


def take_snapshot(shape: Shape) -> None:
    """Remember the derived columns of every brand and campaign (the consistent loaded state)."""
    drop_snapshot()
    with connection.cursor() as cursor:
        for table, columns in SNAPSHOT.items():
            snapshot = _snapshot_table(table)
            cursor.execute(f"CREATE TABLE {snapshot} AS SELECT id, {', '.join(columns)} FROM {table}")
            cursor.execute(f"CREATE UNIQUE INDEX {snapshot}_id ON {snapshot} (id)")
        cursor.execute(
            f"CREATE TABLE {MARKER_TABLE} (campaigns bigint, spend_rows bigint, seed bigint, today date)"
        )
        cursor.execute(
            f"INSERT INTO {MARKER_TABLE} VALUES (%s, %s, %s, %s)",
            [
                shape.campaigns,
                shape.spend_rows,
                shape.seed,
                connection.ops.adapt_datefield_value(shape.today),
            ],
        )


def loaded_shape_matches(shape: Shape) -> bool:
    """Whether the data set in the database is this shape's, loaded today (for --reuse)."""
    with connection.cursor() as cursor:
        if MARKER_TABLE not in connection.introspection.table_names(cursor):
            return False
        cursor.execute(f"SELECT campaigns, spend_rows, seed, today FROM {MARKER_TABLE}")
        row = cursor.fetchone()
    if row is None:
        return False
    stored_today = row[3] if isinstance(row[3], date) else date.fromisoformat(str(row[3]))
    return (row[0], row[1], row[2], stored_today) == (
        shape.campaigns,
        shape.spend_rows,
        shape.seed,
        shape.today,
    )


def restore() -> int:
    """Put every brand and campaign back to the snapshot; returns how many rows differed."""
    changed = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for table, columns in SNAPSHOT.items():
            snapshot = _snapshot_table(table)
            assignments = ", ".join(f"{column} = s.{column}" for column in columns)
            differs = " OR ".join(f"{table}.{column} <> s.{column}" for column in columns)
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM {snapshot} s WHERE {table}.id = s.id AND ({differs})"
            )
            changed += cursor.rowcount
    return changed


def _execute(sql: str, params: dict[str, Any]) -> int:
    adapted = {
        name: connection.ops.adapt_datefield_value(value) if isinstance(value, date) else value
        for name, value in params.items()
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, adapted)
        return int(cursor.rowcount)


def make_daily_stale(shape: Shape) -> int:
    """Midnight: every daily aggregate still counts yesterday (the daily reset rolls them all)."""
    rows = 0
    for table in (Brand._meta.db_table, Campaign._meta.db_table):
        rows += _execute(f"UPDATE {table} SET daily_spend_day = %(day)s", {"day": shape.yesterday})
    return rows


def make_monthly_stale(shape: Shape) -> int:
    """The 1st: every monthly aggregate still counts last month (the monthly reset rolls them all)."""
    rows = 0
    for table in (Brand._meta.db_table, Campaign._meta.db_table):
        rows += _execute(f"UPDATE {table} SET monthly_spend_month = %(month)s", {"month": shape.last_month})
    return rows


def make_all_stale(shape: Shape) -> int:
    """Midnight on the 1st with both resets missed: the check rolls and recomputes every aggregate."""
    return make_daily_stale(shape) + make_monthly_stale(shape)


def flip_dayparted(shape: Shape) -> int:
    """The hour a window opens or closes: every dayparted campaign the rule leaves to dayparting has
    the opposite status (ACTIVE <-> PAUSED DAYPARTING), so the dayparting job turns each back."""
    table = Campaign._meta.db_table
    windows = DaypartingSchedule._meta.db_table
    return _execute(
        f"UPDATE {table} SET"
        " status = CASE WHEN status = 'ACTIVE' THEN 'PAUSED' ELSE 'ACTIVE' END,"
        " pause_reason = CASE WHEN status = 'ACTIVE' THEN 'DAYPARTING' ELSE '' END"
        f" WHERE id IN (SELECT campaign_id FROM {windows})"
        " AND (status = 'ACTIVE' OR pause_reason = 'DAYPARTING')",
        {},
    )


Scenario = Callable[[Shape], int]

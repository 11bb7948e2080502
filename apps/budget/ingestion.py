"""Spend from integrations in batches: the same rules as `services.record_spend`, set-based.

`record_spend_batch` takes up to `MAX_BATCH` records (the API's body, a chunk of a CSV file) and
answers per record: created, duplicate (the same `external_id` with the same data, stored before
or earlier in the batch) or error (the field and why). Valid records are stored even when others
fail. The work per batch is a fixed number of statements, not a transaction per record:

1. every record is validated in Python with `services.validate_spend` (field-named errors);
2. in one transaction: the campaigns' brand rows, then the campaign rows, are locked in primary
   key order (the order every writer uses); the stored `external_id`s are read in one query;
   the new rows go in with `INSERT ... ON CONFLICT (external_id) DO NOTHING RETURNING`, so a
   record whose key another transaction stored meanwhile is not an error but is classified like
   any stored key; one UPDATE per table adds the new spend to the aggregates (rolling stale
   periods forward first, as `record_spend` does); then `services.apply_rule_in_sql` applies the
   status rule to the campaigns that got spend, and to every campaign of a brand now at or over
   a budget, so a batch that crosses a budget pauses within the request.

A key limited to some brands may only write to their campaigns: a record for any other campaign
makes the whole batch refused (`BrandNotAllowed`, the API's 403) and nothing is stored, since a
wrong credential is not a data problem to report record by record.
"""

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from django.core.exceptions import ValidationError
from django.db import connection, transaction

from apps.budget.clock import month_start, utc_now
from apps.budget.models import Brand, Campaign, Spend
from apps.budget.money import to_cents
from apps.budget.rules import Moment
from apps.budget.services import (
    Scope,
    SpendInput,
    apply_rule_in_sql,
    brands_scope,
    campaigns_scope,
    validate_spend,
)
from apps.budget.spend_sql import aggregates_added_sql
from apps.budget.sql_lists import in_list, rows_of

MAX_BATCH = 10_000
FIELDS = ("campaign_id", "amount", "date", "hour", "external_id")
REQUIRED = ("campaign_id", "amount", "date", "hour")


class RecordStatus(StrEnum):
    CREATED = "created"
    DUPLICATE = "duplicate"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class RecordResult:
    """The outcome of one record; `errors` maps a field name to what is wrong with it."""

    index: int
    status: RecordStatus
    errors: Mapping[str, Sequence[str]] = field(default_factory=dict)


class BrandNotAllowed(Exception):
    """The credential may not write to these campaigns' brands (nothing was stored)."""

    def __init__(self, campaign_ids: Sequence[int]) -> None:
        self.campaign_ids = list(campaign_ids)
        listed = ", ".join(str(campaign_id) for campaign_id in self.campaign_ids)
        super().__init__(f"this API key may not write spend for campaign(s) {listed}: not in its brands")


class BatchTooLarge(ValueError):
    def __init__(self, size: int) -> None:
        super().__init__(f"{size} records in one batch; at most {MAX_BATCH} are accepted")


def record_spend_batch(
    records: Sequence[Mapping[str, object]],
    *,
    actor: str,
    allowed_brand_ids: Collection[int] | None = None,
) -> list[RecordResult]:
    """Store a batch of spend records; one result per record, in order (see module docstring).

    Each record has `campaign_id` (int), `amount` (decimal string or Decimal, never a number that
    went through a float), `date` (ISO string or date), `hour` (0-23) and an optional
    `external_id`. `allowed_brand_ids` None means every brand.
    """
    if len(records) > MAX_BATCH:
        raise BatchTooLarge(len(records))
    now = utc_now()
    results: dict[int, RecordResult] = {}
    candidates: dict[int, SpendInput] = {}
    for index, record in enumerate(records):
        try:
            candidates[index] = _validate(record, now)
        except ValidationError as error:
            results[index] = _error(index, error)

    with transaction.atomic():
        brand_of = _lock_campaigns(sorted({spend.campaign_id for spend in candidates.values()}))
        if allowed_brand_ids is not None:
            _check_allowed(records, brand_of, set(allowed_brand_ids))
        for index, spend in list(candidates.items()):
            if spend.campaign_id not in brand_of:
                del candidates[index]
                results[index] = _error(
                    index, ValidationError({"campaign": f"campaign {spend.campaign_id} does not exist"})
                )
        repeats = _take_repeats(candidates)
        inserted = _insert(candidates, now)
        # A key the insert skipped is stored already (before this batch, or by a concurrent one).
        skipped = {index: candidates.pop(index) for index in list(candidates) if index not in inserted}
        stored = _stored_spend([spend.external_id for spend in skipped.values() if spend.external_id])
        for index, spend in skipped.items():
            results[index] = _compared(index, spend, _stored_holder(stored, spend), "")
        for index, (first, spend) in repeats.items():
            if first in inserted:
                where = f" by record {first} of this batch"
                results[index] = _compared(index, spend, candidates[first], where)
            else:
                results[index] = _compared(index, spend, _stored_holder(stored, spend), "")
        for index in inserted:
            results[index] = RecordResult(index, RecordStatus.CREATED)
        _count_and_apply_rule(list(candidates.values()), brand_of, actor=actor, now=now)
    return [results[index] for index in range(len(records))]


def _validate(record: Mapping[str, object], now: datetime) -> SpendInput:
    errors: dict[str, list[str]] = {}
    for name in REQUIRED:
        if record.get(name) is None:
            errors[name] = [f"{name} is required"]
    campaign_id = record.get("campaign_id")
    if campaign_id is not None and (isinstance(campaign_id, bool) or not isinstance(campaign_id, int)):
        errors["campaign_id"] = [f"campaign_id must be an integer, not {campaign_id!r}"]
    amount = record.get("amount")
    if isinstance(amount, int | float) and not isinstance(amount, bool):
        errors["amount"] = [
            f'amount must be a decimal string such as "12.34", not the number {amount!r}: '
            "a JSON number may already have lost its cents"
        ]
    if errors:
        raise ValidationError(errors)
    assert isinstance(campaign_id, int)  # checked above
    return validate_spend(
        campaign=campaign_id,
        amount=amount,
        date_=record["date"],
        hour=record["hour"],
        external_id=record.get("external_id"),
        now=now,
    )


def _error(index: int, error: ValidationError) -> RecordResult:
    # validate_spend names the campaign "campaign"; a record calls it "campaign_id".
    errors = {
        ("campaign_id" if name == "campaign" else name): messages
        for name, messages in error.message_dict.items()
    }
    return RecordResult(index, RecordStatus.ERROR, errors)


def _same(a: SpendInput, b: SpendInput) -> bool:
    return (a.campaign_id, a.amount, a.date, a.hour) == (b.campaign_id, b.amount, b.date, b.hour)


def _conflict(index: int, spend: SpendInput, stored: SpendInput, where: str) -> RecordResult:
    return _error(
        index,
        ValidationError(
            {
                "external_id": (
                    f"external_id {spend.external_id!r} was already used{where} for a different spend "
                    f"(campaign {stored.campaign_id}, amount {stored.amount}, "
                    f"{stored.date.isoformat()} {stored.hour:02d}h)"
                )
            }
        ),
    )


def _take_repeats(candidates: dict[int, SpendInput]) -> dict[int, tuple[int, SpendInput]]:
    """Remove every record whose key an earlier record of the batch has; {index: (earlier, record)}.

    Only the first record of a key is inserted; a repeat is then a duplicate or a conflict of
    whichever row holds the key: that first record, or the row stored before it.
    """
    first: dict[str, int] = {}
    repeats: dict[int, tuple[int, SpendInput]] = {}
    for index, spend in list(candidates.items()):
        if spend.external_id is None:
            continue
        earlier = first.setdefault(spend.external_id, index)
        if earlier != index:
            repeats[index] = (earlier, candidates.pop(index))
    return repeats


def _compared(index: int, spend: SpendInput, holder: SpendInput, where: str) -> RecordResult:
    """A record whose key `holder` has: a duplicate when the data match, else a conflict."""
    if _same(holder, spend):
        return RecordResult(index, RecordStatus.DUPLICATE)
    return _conflict(index, spend, holder, where)


def _stored_holder(stored: Mapping[str, SpendInput], spend: SpendInput) -> SpendInput:
    assert spend.external_id is not None  # only a record with a key can be skipped
    holder = stored.get(spend.external_id)
    if holder is None:
        # ON CONFLICT skipped it, so a committed row has the key; not finding it is a bug.
        raise RuntimeError(f"external_id {spend.external_id!r} was neither inserted nor found stored")
    return holder


def _stored_spend(keys: list[str]) -> dict[str, SpendInput]:
    """The stored spend rows that have these keys, by key (one query however many keys)."""
    if not keys:
        return {}
    condition, params = in_list("external_id", "keys", keys, "text")
    rows = Spend.objects.raw(
        f"SELECT id, campaign_id, amount, date, hour, external_id FROM {Spend._meta.db_table}"
        f" WHERE {condition}",
        params,
    )
    return {
        row.external_id: SpendInput(row.campaign_id, row.amount, row.date, row.hour, row.external_id)
        for row in rows
        if row.external_id is not None
    }


def _lock_campaigns(campaign_ids: list[int]) -> dict[int, int]:
    """Lock the brands, then the campaigns, by primary key; the brand id of each existing campaign."""
    if not campaign_ids:
        return {}
    campaigns, brands = Campaign._meta.db_table, Brand._meta.db_table
    # SQLite has no row locks: its IMMEDIATE transaction already holds the only write lock.
    for_update = " FOR NO KEY UPDATE" if connection.features.has_select_for_no_key_update else ""
    campaign_in, params = in_list("id", "campaigns", campaign_ids, "bigint")
    brand_of = _brand_of(f"SELECT id, brand_id FROM {campaigns} WHERE {campaign_in}", params)
    locked_brands: set[int] = set()
    with connection.cursor() as cursor:
        for _attempt in range(3):
            missing = sorted(set(brand_of.values()) - locked_brands)
            brand_in, brand_params = in_list("id", "brands", missing, "bigint")
            cursor.execute(f"SELECT id FROM {brands} WHERE {brand_in} ORDER BY id{for_update}", brand_params)
            locked_brands.update(missing)
            brand_of = _brand_of(
                f"SELECT id, brand_id FROM {campaigns} WHERE {campaign_in} ORDER BY id{for_update}", params
            )
            if set(brand_of.values()) <= locked_brands:
                return brand_of
            # A campaign moved to another brand between the read and the lock: lock that brand too.
    raise RuntimeError("campaigns keep moving between brands; try again")


def _brand_of(query: str, params: Mapping[str, str]) -> dict[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return dict(cursor.fetchall())


def _check_allowed(
    records: Sequence[Mapping[str, object]], brand_of: dict[int, int], allowed: set[int]
) -> None:
    """Every campaign the batch names, valid record or not, must be of an allowed brand."""
    named = {
        value
        for record in records
        if isinstance(value := record.get("campaign_id"), int) and not isinstance(value, bool)
    }
    unlocked = sorted(named - brand_of.keys())
    if unlocked:
        brand_of = {
            **brand_of,
            **dict(Campaign.objects.filter(pk__in=unlocked).values_list("pk", "brand_id")),
        }
    # A campaign that does not exist is reported per record, not refused here.
    outside = sorted(
        campaign_id
        for campaign_id in named
        if campaign_id in brand_of and brand_of[campaign_id] not in allowed
    )
    if outside:
        raise BrandNotAllowed(outside)


SPEND_COLUMNS = (
    ("campaign_id", "bigint"),
    ("amount", "bigint"),
    ("date", "date"),
    ("hour", "integer"),
    ("external_id", "text"),
)


def _insert(candidates: dict[int, SpendInput], now: datetime) -> set[int]:
    """Insert the candidates; the indexes actually inserted (a key stored meanwhile is skipped)."""
    if not candidates:
        return set()
    rows, params = rows_of(
        "rows",
        SPEND_COLUMNS,
        (
            (spend.campaign_id, to_cents(spend.amount), spend.date.isoformat(), spend.hour, spend.external_id)
            for spend in candidates.values()
        ),
    )
    columns = ", ".join(column for column, _type in SPEND_COLUMNS)
    with connection.cursor() as cursor:
        # "WHERE true": SQLite cannot tell ON CONFLICT from a join constraint after SELECT ... FROM.
        cursor.execute(
            f"INSERT INTO {Spend._meta.db_table} ({columns}, created_at)"
            f" SELECT {columns}, %(created_at)s FROM {rows} WHERE true"
            " ON CONFLICT (external_id) DO NOTHING RETURNING external_id",
            {**params, "created_at": connection.ops.adapt_datetimefield_value(now)},
        )
        inserted_keys = {key for (key,) in cursor.fetchall() if key is not None}
    # A row without a key never conflicts, so it was inserted.
    return {
        index
        for index, spend in candidates.items()
        if spend.external_id is None or spend.external_id in inserted_keys
    }


def _count_and_apply_rule(
    created: list[SpendInput], brand_of: dict[int, int], *, actor: str, now: datetime
) -> None:
    """Add the created spend to the aggregates (one UPDATE per table), then the status rule."""
    if not created:
        return
    moment = Moment.at(now)
    by_campaign: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for spend in created:
        cents = to_cents(spend.amount)
        totals = by_campaign[spend.campaign_id]
        # Late spend of an earlier day counts in the month only; of an earlier month, nowhere.
        if spend.date == moment.today:
            totals[0] += cents
        if month_start(spend.date) == moment.month:
            totals[1] += cents
    by_brand: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for campaign_id, (daily, monthly) in by_campaign.items():
        by_brand[brand_of[campaign_id]][0] += daily
        by_brand[brand_of[campaign_id]][1] += monthly
    _add_to_aggregates(Campaign._meta.db_table, by_campaign, moment)
    _add_to_aggregates(Brand._meta.db_table, by_brand, moment)

    reached = [
        brand.pk
        for brand in Brand.objects.filter(pk__in=sorted(by_brand))
        if brand.spending().daily_reached(moment) or brand.spending().monthly_reached(moment)
    ]
    scope = campaigns_scope(sorted(by_campaign))
    if reached:
        # The brand is at or over a budget: every one of its campaigns must stop now.
        brands = brands_scope(reached)
        scope = Scope(f"({scope.sql}) OR ({brands.sql})", {**scope.params, **brands.params})
    apply_rule_in_sql(scope, actor=actor, now=now)


def _add_to_aggregates(table: str, totals: Mapping[int, list[int]], moment: Moment) -> None:
    """`daily_spend += daily, monthly_spend += monthly` per row, in cents, stale periods reset first."""
    rows, params = rows_of(
        "totals",
        (("id", "bigint"), ("daily", "bigint"), ("monthly", "bigint")),
        ((pk, daily, monthly) for pk, (daily, monthly) in sorted(totals.items())),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET "
            + aggregates_added_sql(today="%(today)s", month="%(month)s", daily="v.daily", monthly="v.monthly")
            + f" FROM {rows} WHERE {table}.id = v.id",
            {
                **params,
                "today": connection.ops.adapt_datefield_value(moment.today),
                "month": connection.ops.adapt_datefield_value(moment.month),
            },
        )

"""The write paths (SPEC, "Write paths"). Tasks, admin actions and commands call these.

Locking, the same everywhere so that nothing deadlocks and no update is lost on PostgreSQL:
brand row first, then campaign rows, each in primary-key order. The set-based jobs take the
whole brand table (`LOCK TABLE ... IN EXCLUSIVE MODE`): every writer of spend or status locks a
brand row first, so while a job holds the table nothing it reads can change under it. On SQLite
the `IMMEDIATE` transaction mode already serialises writers.
"""

import logging
import operator
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import reduce
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Case, Count, DateField, F, Q, Value, When

from apps.budget import spend_sql, webhooks
from apps.budget.choices import CampaignStatus, PauseReason
from apps.budget.clock import month_start, utc_now
from apps.budget.models import (
    Brand,
    Campaign,
    CampaignStatusChange,
    DaypartingSchedule,
    Spend,
    SpendTally,
    SpendTotal,
)
from apps.budget.money import CentsField, parse_money, to_cents
from apps.budget.rules import (
    COMPLETED,
    CampaignFacts,
    Decision,
    Moment,
    Window,
    decide_status,
    paused,
    rule_params,
    status_rule_sql,
)
from apps.budget.sql_lists import in_list

logger = logging.getLogger(__name__)

SYSTEM_ACTOR = "system"
EXTERNAL_ID_MAX_LENGTH = 255
BIGINT_MAX = 2**63 - 1


def user_actor(user: AbstractBaseUser | AnonymousUser | None) -> str:
    """The audit-trail label of a person, or of the system when nobody acted."""
    if user is None or not user.is_authenticated:
        return SYSTEM_ACTOR
    return f"user:{user.get_username()}"


# --- Results -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transition:
    old_status: str
    new_status: str
    reason: str
    count: int

    def label(self) -> str:
        why = f" ({self.reason})" if self.reason else ""
        return f"{self.old_status} -> {self.new_status}{why}"


@dataclass(frozen=True, slots=True)
class StatusChanges:
    """What one application of the status rule changed, grouped by transition."""

    actor: str
    changed_at: datetime
    transitions: tuple[Transition, ...] = ()

    @property
    def total(self) -> int:
        return sum(t.count for t in self.transitions)


@dataclass(frozen=True, slots=True)
class Rollover:
    """How many aggregates a reset moved to the current day / month (0 when none were stale)."""

    brands_daily: int = 0
    campaigns_daily: int = 0
    brands_monthly: int = 0
    campaigns_monthly: int = 0

    @property
    def total(self) -> int:
        return self.brands_daily + self.campaigns_daily + self.brands_monthly + self.campaigns_monthly


@dataclass(frozen=True, slots=True)
class Drift:
    """How many aggregates the reconciliation found different from their Spend rows."""

    campaigns: int = 0
    brands: int = 0


@dataclass(frozen=True, slots=True)
class JobReport:
    """The summary every budget job returns: JSON-safe through `as_dict`."""

    today: date
    rolled: Rollover
    changes: StatusChanges
    drift: Drift = field(default_factory=Drift)

    def as_dict(self) -> dict[str, Any]:
        return {
            "today": self.today.isoformat(),
            "rolled": asdict(self.rolled),
            "drift": asdict(self.drift),
            "status_changes": self.changes.total,
            "transitions": {t.label(): t.count for t in self.changes.transitions},
        }


# --- Spend ingestion -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpendInput:
    """A validated spend record, ready to store."""

    campaign_id: int
    amount: Decimal
    date: date
    hour: int
    external_id: str | None


def validate_spend(
    *,
    campaign: Campaign | int,
    amount: object,
    date_: object,
    hour: object,
    external_id: object,
    now: datetime,
) -> SpendInput:
    """Check a spend record without touching the database; a ValidationError names each bad field."""
    errors: dict[str, list[str]] = {}
    campaign_id = _check_campaign_id(campaign, errors)
    money = _check_amount(amount, errors)
    day = _parse_date(date_, errors)
    checked_hour = _check_hour(hour, day, now, errors)
    key = _check_external_id(external_id, errors)
    if errors:
        raise ValidationError(errors)
    # Each checker recorded an error where it returned None.
    assert campaign_id is not None
    assert day is not None
    assert checked_hour is not None
    return SpendInput(campaign_id=campaign_id, amount=money, date=day, hour=checked_hour, external_id=key)


def _check_campaign_id(campaign: object, errors: dict[str, list[str]]) -> int | None:
    campaign_id = campaign.pk if isinstance(campaign, Campaign) else campaign
    if isinstance(campaign_id, bool) or not isinstance(campaign_id, int):
        errors["campaign"] = [f"campaign must be a Campaign or an integer id, not {campaign!r}"]
        return None
    if not 0 < campaign_id <= BIGINT_MAX:
        # Beyond a bigint the database would raise instead of finding nothing.
        errors["campaign"] = [f"campaign {campaign_id} does not exist"]
        return None
    return campaign_id


def _check_amount(amount: object, errors: dict[str, list[str]]) -> Decimal:
    try:
        money = parse_money(amount, field="amount")
    except ValidationError as error:
        errors.update(error.message_dict)
        return Decimal(0)
    if money <= 0:
        errors["amount"] = [f"amount {amount!r} must be greater than 0"]
    return money


def _check_hour(hour: object, day: date | None, now: datetime, errors: dict[str, list[str]]) -> int | None:
    today = now.date()
    if day is not None and day > today:
        errors["date"] = [f"date {day.isoformat()} is in the future (today is {today.isoformat()} UTC)"]
    if isinstance(hour, bool) or not isinstance(hour, int):
        errors["hour"] = [f"hour must be an integer from 0 to 23, not {hour!r}"]
        return None
    if not 0 <= hour <= 23:
        errors["hour"] = [f"hour {hour} is outside 0-23"]
        return None
    if day == today and hour > now.hour:
        errors["hour"] = [
            f"hour {hour} of {today.isoformat()} is in the future (it is now {now.hour:02d}h UTC)"
        ]
        return None
    return hour


def _check_external_id(external_id: object, errors: dict[str, list[str]]) -> str | None:
    if external_id is None:
        return None
    if not isinstance(external_id, str) or not external_id.strip():
        errors["external_id"] = [f"external_id must be a non-empty string, not {external_id!r}"]
    elif len(external_id) > EXTERNAL_ID_MAX_LENGTH:
        errors["external_id"] = [f"external_id is longer than {EXTERNAL_ID_MAX_LENGTH} characters"]
    elif "\x00" in external_id:
        # PostgreSQL text cannot hold NUL: refuse it here rather than fail in the INSERT.
        errors["external_id"] = ["external_id must not contain NUL (\\x00) characters"]
    else:
        return external_id
    return None


def _parse_date(value: object, errors: dict[str, list[str]]) -> date | None:
    if isinstance(value, datetime):
        errors["date"] = [f"date must be a date, not the datetime {value.isoformat()}"]
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            errors["date"] = [f"date {value!r} is not an ISO date (YYYY-MM-DD)"]
            return None
    errors["date"] = [f"date must be a date or an ISO date string, not {value!r}"]
    return None


def record_spend(
    campaign: Campaign | int,
    amount: Decimal | int | str,
    date: date | str,
    hour: int,
    external_id: str | None = None,
    *,
    actor: str = SYSTEM_ACTOR,
) -> Spend:
    """Store one spend record, count it, and pause at once whatever it pushed to a budget.

    One transaction: the row, the campaign's and brand's aggregates (when the spend is of today /
    this month) and the status rule. A repeated `external_id` returns the stored row and counts
    nothing again; the same key with different data is a conflict (ValidationError).
    """
    now = utc_now()
    spend_input = validate_spend(
        campaign=campaign, amount=amount, date_=date, hour=hour, external_id=external_id, now=now
    )
    if connection.vendor == "postgresql":
        stored_id = spend_sql.record_in_one_statement(
            campaign_id=spend_input.campaign_id,
            cents=to_cents(spend_input.amount),
            day=spend_input.date,
            hour=spend_input.hour,
            external_id=spend_input.external_id,
            now=now,
        )
        if stored_id is not None:
            return _stored(Spend(id=stored_id, campaign_id=spend_input.campaign_id), spend_input, now)
    moment = Moment.at(now)
    with transaction.atomic():
        brand, locked = lock_campaign(spend_input.campaign_id)
        spend = _insert_spend(locked, spend_input, now)
        if spend is None:
            # The key is stored (before, or by a concurrent caller): nothing is counted again.
            stored = Spend.objects.get(external_id=spend_input.external_id)
            return _same_spend_or_conflict(stored, spend_input)
        for owner in (brand, locked):
            _count_spend(owner, spend_input.amount, spend_input.date, moment)
        brand_spending = brand.spending()
        if brand_spending.daily_reached(moment) or brand_spending.monthly_reached(moment):
            # The brand is at or over a budget: every one of its campaigns must stop now.
            apply_rule_in_sql(brand_scope(brand.pk), actor=actor, now=now)
        else:
            _write_decision(locked, decide_status(_facts(locked, brand), moment), actor=actor, now=now)
    return spend


def _insert_spend(campaign: Campaign, spend_input: SpendInput, now: datetime) -> Spend | None:
    """The stored row, or None when its external_id is taken.

    `ON CONFLICT DO NOTHING` rather than catching the unique violation: a taken key needs no
    savepoint to keep the transaction usable, and no read before the insert to find it.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Spend._meta.db_table} (campaign_id, amount, date, hour, external_id, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (external_id) DO NOTHING RETURNING id",
            [
                campaign.pk,
                to_cents(spend_input.amount),
                connection.ops.adapt_datefield_value(spend_input.date),
                spend_input.hour,
                spend_input.external_id,
                connection.ops.adapt_datetimefield_value(now),
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return _stored(Spend(id=row[0], campaign=campaign), spend_input, now)


def _stored(spend: Spend, spend_input: SpendInput, now: datetime) -> Spend:
    """The instance of a row just inserted with raw SQL (its id and campaign set)."""
    spend.amount = spend_input.amount
    spend.date = spend_input.date
    spend.hour = spend_input.hour
    spend.external_id = spend_input.external_id
    spend.created_at = now
    spend._state.adding = False
    return spend


def _same_spend_or_conflict(stored: Spend, spend_input: SpendInput) -> Spend:
    same = (stored.campaign_id, stored.amount, stored.date, stored.hour) == (
        spend_input.campaign_id,
        spend_input.amount,
        spend_input.date,
        spend_input.hour,
    )
    if same:
        return stored
    raise ValidationError(
        {
            "external_id": (
                f"external_id {spend_input.external_id!r} was already used for a different spend "
                f"(campaign {stored.campaign_id}, amount {stored.amount}, "
                f"{stored.date.isoformat()} {stored.hour:02d}h)"
            )
        }
    )


def _count_spend(owner: Brand | Campaign, amount: Decimal, day: date, moment: Moment) -> None:
    """Add a spend to the aggregates of its day and month, rolling stale ones forward first.

    The row is locked, so plain Python arithmetic on it is exact and loses no concurrent update.
    """
    if owner.daily_spend_day < moment.today:
        owner.daily_spend, owner.daily_spend_day = Decimal("0.00"), moment.today
    if owner.monthly_spend_month < moment.month:
        owner.monthly_spend, owner.monthly_spend_month = Decimal("0.00"), moment.month
    if day == moment.today:
        owner.daily_spend += amount
    if month_start(day) == moment.month:
        owner.monthly_spend += amount
    owner.save(update_fields=AGGREGATE_FIELDS)


# --- Manual actions ------------------------------------------------------------------------------


def pause_campaign(campaign: Campaign | int, by: AbstractBaseUser | AnonymousUser | None = None) -> Campaign:
    """A person's pause: PAUSED with reason MANUAL, until a person resumes it.

    A pause always wins over a budget or dayparting pause. A COMPLETED campaign cannot be paused.
    """
    with transaction.atomic():
        _brand, locked = lock_campaign(_campaign_id(campaign))
        if locked.status == CampaignStatus.COMPLETED:
            raise ValidationError(
                {
                    "status": (
                        f"campaign {locked.name!r} is COMPLETED and cannot be paused; "
                        "extend its end_date and resume it instead"
                    )
                }
            )
        _write_decision(locked, paused(PauseReason.MANUAL), actor=user_actor(by), now=utc_now())
    return _refreshed(campaign, locked)


def resume_campaign(campaign: Campaign | int, by: AbstractBaseUser | AnonymousUser | None = None) -> Campaign:
    """A person's resume: lifts MANUAL (or COMPLETED, once end_date allows) and applies the rule.

    The rule still decides, so a campaign over budget comes back PAUSED with that reason.
    """
    now = utc_now()
    moment = Moment.at(now)
    with transaction.atomic():
        brand, locked = lock_campaign(_campaign_id(campaign))
        # Judge the campaign as if nobody had stopped it: the person's word lifts MANUAL and
        # COMPLETED, and only the rule's own conditions remain.
        facts = _facts(locked, brand, status=CampaignStatus.ACTIVE, pause_reason=PauseReason.NONE)
        decision = decide_status(facts, moment)
        if decision == COMPLETED:
            assert locked.end_date is not None  # only a past end_date completes an unstopped campaign
            raise ValidationError(
                {
                    "end_date": (
                        f"campaign {locked.name!r} ended on {locked.end_date.isoformat()}; "
                        "extend end_date before resuming it"
                    )
                }
            )
        _write_decision(locked, decision, actor=user_actor(by), now=now)
    return _refreshed(campaign, locked)


def reevaluate_campaigns(
    campaign_ids: Iterable[int], *, actor: str, now: datetime | None = None
) -> StatusChanges:
    """Apply the status rule now to the given campaigns (after an edit, or on request)."""
    ids = sorted(set(campaign_ids))
    now = now or utc_now()
    if not ids:
        return StatusChanges(actor=actor, changed_at=now)
    with transaction.atomic():
        brand_ids = Campaign.objects.filter(pk__in=ids).values("brand_id")
        list(Brand.objects.filter(pk__in=brand_ids).order_by("pk").select_for_update(no_key=True))
        list(Campaign.objects.filter(pk__in=ids).order_by("pk").select_for_update(no_key=True))
        return apply_rule_in_sql(campaigns_scope(ids), actor=actor, now=now)


def save_brand(brand: Brand, *, by: AbstractBaseUser | AnonymousUser | None = None) -> StatusChanges:
    """Create or edit a brand (budgets, activity), then apply the rule to all its campaigns.

    Raising a budget resumes budget-paused campaigns; deactivating the brand pauses them all.
    Invalid values raise a ValidationError naming the field; nothing is stored.
    """
    now = utc_now()
    brand.full_clean()
    with transaction.atomic():
        if brand.pk is not None:
            stored = Brand.objects.select_for_update(no_key=True).filter(pk=brand.pk).first()
            if stored is not None:
                _keep_derived(brand, stored, AGGREGATE_FIELDS)
        brand.save()
        return apply_rule_in_sql(brand_scope(brand.pk), actor=user_actor(by), now=now)


def save_campaign(campaign: Campaign, *, by: AbstractBaseUser | AnonymousUser | None = None) -> StatusChanges:
    """Create or edit a campaign (budgets, dates, brand), then apply the rule to it at once.

    Aggregates and status are never taken from the caller: they are derived. Invalid values raise
    a ValidationError naming the field; nothing is stored.
    """
    now = utc_now()
    campaign.full_clean()
    with transaction.atomic():
        stored = Campaign.objects.filter(pk=campaign.pk).first() if campaign.pk is not None else None
        brand_ids = sorted({campaign.brand_id} | ({stored.brand_id} if stored else set()))
        list(Brand.objects.filter(pk__in=brand_ids).order_by("pk").select_for_update(no_key=True))
        if stored is not None:
            stored = Campaign.objects.select_for_update(no_key=True).get(pk=stored.pk)
            _keep_derived(campaign, stored, (*AGGREGATE_FIELDS, "status", "pause_reason"))
        campaign.save()
        changes = apply_rule_in_sql(campaigns_scope([campaign.pk]), actor=user_actor(by), now=now)
        campaign.refresh_from_db(fields=["status", "pause_reason"])
        return changes


AGGREGATE_FIELDS = ("daily_spend", "daily_spend_day", "monthly_spend", "monthly_spend_month")


def _keep_derived(edited: Brand | Campaign, stored: Brand | Campaign, fields: Iterable[str]) -> None:
    """Derived fields stay as stored: an edit form's copy may be stale (a spend came in since)."""
    for name in fields:
        setattr(edited, name, getattr(stored, name))


def _campaign_id(campaign: Campaign | int) -> int:
    return campaign.pk if isinstance(campaign, Campaign) else campaign


def _refreshed(original: Campaign | int, locked: Campaign) -> Campaign:
    """The locked row, with the caller's instance (if it passed one) brought up to date."""
    if isinstance(original, Campaign):
        original.status, original.pause_reason = locked.status, locked.pause_reason
    return locked


def lock_campaign(campaign_id: int) -> tuple[Brand, Campaign]:
    """Lock the campaign's brand row, then the campaign row (the fixed order)."""
    missing = ValidationError({"campaign": f"campaign {campaign_id} does not exist"})
    for _attempt in range(3):
        brand = (
            Brand.objects.select_for_update(no_key=True, of=("self",))
            .filter(campaigns__pk=campaign_id)
            .first()
        )
        locked = Campaign.objects.select_for_update(no_key=True).filter(pk=campaign_id).first()
        if brand is None or locked is None:
            raise missing
        if locked.brand_id == brand.pk:
            return brand, locked
        # The campaign moved to another brand between the two reads: lock the right one.
    raise RuntimeError(f"campaign {campaign_id} keeps moving between brands; try again")


def _facts(
    campaign: Campaign,
    brand: Brand,
    *,
    status: str | None = None,
    pause_reason: str | None = None,
) -> CampaignFacts:
    windows = tuple(
        Window(day, start, end)
        for day, start, end in DaypartingSchedule.objects.filter(campaign=campaign).values_list(
            "day_of_week", "start_hour", "end_hour"
        )
    )
    return CampaignFacts(
        status=CampaignStatus(status if status is not None else campaign.status),
        pause_reason=PauseReason(pause_reason if pause_reason is not None else campaign.pause_reason),
        start_date=campaign.start_date,
        end_date=campaign.end_date,
        campaign=campaign.spending(),
        brand=brand.spending(),
        brand_is_active=brand.is_active,
        dayparting=windows,
    )


def _write_decision(campaign: Campaign, decision: Decision, *, actor: str, now: datetime) -> bool:
    """Store a new status and its audit row; False (and no write) when nothing changes."""
    if (campaign.status, campaign.pause_reason) == (decision.status, decision.reason):
        return False
    old_status = campaign.status
    change = CampaignStatusChange.objects.create(
        campaign=campaign,
        old_status=old_status,
        new_status=decision.status,
        reason=decision.reason,
        actor=actor,
        changed_at=now,
    )
    webhooks.queue_status_change(change)
    campaign.status, campaign.pause_reason = decision.status, decision.reason
    campaign.save(update_fields=["status", "pause_reason"])
    logger.info(
        "campaign %s %s -> %s %s by %s", campaign.pk, old_status, decision.status, decision.reason, actor
    )
    return True


# --- The set-based jobs --------------------------------------------------------------------------

NOT_COMPLETED_SQL = "c.status <> 'COMPLETED'"


@dataclass(frozen=True, slots=True)
class Scope:
    """Which campaigns a set-based application of the rule looks at (SQL over alias `c`)."""

    sql: str
    params: Mapping[str, object] = field(default_factory=dict)


def all_scope() -> Scope:
    return Scope(NOT_COMPLETED_SQL)


def brand_scope(brand_id: int) -> Scope:
    return Scope(f"{NOT_COMPLETED_SQL} AND c.brand_id = %(scope_brand)s", {"scope_brand": brand_id})


def brands_scope(brand_ids: list[int]) -> Scope:
    condition, params = in_list("c.brand_id", "scope_brands", brand_ids, "bigint")
    return Scope(f"{NOT_COMPLETED_SQL} AND {condition}", params)


def dayparted_scope() -> Scope:
    table = DaypartingSchedule._meta.db_table
    return Scope(f"{NOT_COMPLETED_SQL} AND EXISTS (SELECT 1 FROM {table} w WHERE w.campaign_id = c.id)")


def campaigns_scope(ids: list[int]) -> Scope:
    condition, params = in_list("c.id", "scope_campaigns", ids, "bigint")
    return Scope(condition, params)


def _adapted(params: Mapping[str, object]) -> dict[str, Any]:
    """Parameters in the form the connection's backend stores dates and datetimes in."""
    adapted: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, datetime):
            adapted[name] = connection.ops.adapt_datetimefield_value(value)
        elif isinstance(value, date):
            adapted[name] = connection.ops.adapt_datefield_value(value)
        else:
            adapted[name] = value
    return adapted


DECISIONS_TABLE = "budget_status_decision"


def apply_rule_in_sql(scope: Scope, *, actor: str, now: datetime) -> StatusChanges:
    """The status rule for every campaign in `scope`, in a fixed number of statements.

    The decisions that change something go to a temporary table first: the audit rows, the
    update and the summary are then made from that one evaluation. The caller holds the locks.
    """
    campaign_table = Campaign._meta.db_table
    brand_table = Brand._meta.db_table
    audit_table = CampaignStatusChange._meta.db_table
    rule = status_rule_sql(DaypartingSchedule._meta.db_table)
    params = _adapted({**rule_params(Moment.at(now)), **scope.params, "actor": actor, "changed_at": now})
    # OFFSET 0 keeps PostgreSQL from flattening the subquery, which can make it test the rule's
    # conditions once per (campaign, outcome) pair, ten times per campaign (SQLite needs no fence).
    keep_whole = " OFFSET 0" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {DECISIONS_TABLE} ("
            " campaign_id bigint PRIMARY KEY, old_status varchar(16) NOT NULL,"
            " new_status varchar(16) NOT NULL, new_reason varchar(32) NOT NULL)"
        )
        cursor.execute(f"DELETE FROM {DECISIONS_TABLE}")
        cursor.execute(
            f"INSERT INTO {DECISIONS_TABLE} (campaign_id, old_status, new_status, new_reason)"
            f" WITH {rule.outcomes}"
            " SELECT d.id, d.old_status, o.status, o.reason FROM ("
            f"  SELECT c.id AS id, c.status AS old_status, c.pause_reason AS old_reason, {rule.step} AS step"
            f"  FROM {campaign_table} c JOIN {brand_table} b ON b.id = c.brand_id"
            f"  WHERE {scope.sql}{keep_whole}"
            " ) d JOIN outcomes o ON o.step = d.step"
            " WHERE d.old_status <> o.status OR d.old_reason <> o.reason",
            params,
        )
        cursor.execute(
            f"INSERT INTO {audit_table} (campaign_id, old_status, new_status, reason, actor, changed_at)"
            f" SELECT campaign_id, old_status, new_status, new_reason, %(actor)s, %(changed_at)s"
            f" FROM {DECISIONS_TABLE}",
            params,
        )
        # The outbound events of those audit rows, in this transaction, sent after commit.
        webhooks.queue_decided_changes(cursor, DECISIONS_TABLE, params)
        cursor.execute(
            f"UPDATE {campaign_table} SET status = d.new_status, pause_reason = d.new_reason"
            f" FROM {DECISIONS_TABLE} d WHERE {campaign_table}.id = d.campaign_id"
        )
        cursor.execute(
            f"SELECT old_status, new_status, new_reason, COUNT(*) FROM {DECISIONS_TABLE}"
            " GROUP BY old_status, new_status, new_reason ORDER BY old_status, new_status, new_reason"
        )
        transitions = tuple(Transition(*row) for row in cursor.fetchall())
        cursor.execute(f"DELETE FROM {DECISIONS_TABLE}")
    changes = StatusChanges(actor=actor, changed_at=now, transitions=transitions)
    if changes.total:
        logger.info("%s changed %d campaign statuses: %s", actor, changes.total, _describe(transitions))
    return changes


def _describe(transitions: Iterable[Transition]) -> str:
    return ", ".join(f"{t.label()}: {t.count}" for t in transitions)


# How long a job waits for writers to let go of the brand table before it gives up with
# OperationalError (the Celery task then retries with backoff) instead of queueing every
# spend writer behind it until the task's time limit.
JOB_LOCK_TIMEOUT_MS = 30_000


def lock_all_brands() -> None:
    """Hold every brand (and so every campaign writer) still for a set-based job.

    On SQLite the IMMEDIATE transaction already holds the only write lock.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{JOB_LOCK_TIMEOUT_MS}ms"])
            cursor.execute(f"LOCK TABLE {Brand._meta.db_table} IN EXCLUSIVE MODE")


def _roll_over(moment: Moment, *, daily: bool, monthly: bool) -> Rollover:
    """Move stale aggregates to the current day / month, counting nothing yet (set-based).

    One read pass per table counts what is stale; then one UPDATE per table rolls both periods,
    so a row is written at most once whatever has to move.
    """
    periods = [
        (name, column, period_field, start)
        for name, column, period_field, start, wanted in (
            ("daily", "daily_spend", "daily_spend_day", moment.today, daily),
            ("monthly", "monthly_spend", "monthly_spend_month", moment.month, monthly),
        )
        if wanted
    ]
    counts: dict[str, int] = {}
    for model, prefix in ((Brand, "brands"), (Campaign, "campaigns")):
        stale = {name: Q(**{f"{period_field}__lt": start}) for name, _f, period_field, start in periods}
        found = model.objects.aggregate(**{name: Count("pk", filter=q) for name, q in stale.items()})
        counts.update({f"{prefix}_{name}": found[name] for name in stale})
        updates: dict[str, Case] = {}
        for name, column, period_field, start in periods:
            if found[name]:
                updates[column] = Case(
                    When(stale[name], then=Value(0)), default=F(column), output_field=CentsField()
                )
                updates[period_field] = Case(
                    When(stale[name], then=Value(start)), default=F(period_field), output_field=DateField()
                )
        if updates:
            model.objects.filter(reduce(operator.or_, stale.values())).update(**updates)
    return Rollover(**counts)


def _tally_new_spend(moment: Moment) -> int:
    """Add the Spend rows written since the last check to today's and this month's totals.

    Returns how many rows it added. Totals of earlier periods are dropped: nothing reads them.
    The caller holds the brand table, so every row up to MAX(id) is committed and visible.
    """
    tally, _created = SpendTally.objects.select_for_update().get_or_create(pk=1)
    spend_table, total_table = Spend._meta.db_table, SpendTotal._meta.db_table
    params = _adapted(
        {"today": moment.today, "month": moment.month, "after": tally.last_spend_id, "day": "D", "mon": "M"}
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT MAX(id), COUNT(*) FROM {spend_table} WHERE id > %(after)s",
            {"after": tally.last_spend_id},
        )
        last_id, new_rows = cursor.fetchone() or (None, 0)
        if last_id is not None:
            params["upto"] = last_id
            for period, first_day in (("day", "today"), ("mon", "month")):
                cursor.execute(
                    f"INSERT INTO {total_table} (campaign_id, period, starts_on, amount)"
                    f" SELECT campaign_id, %({period})s, %({first_day})s, SUM(amount) FROM {spend_table}"
                    " WHERE id > %(after)s AND id <= %(upto)s"
                    f" AND date >= %({first_day})s AND date <= %(today)s"
                    " GROUP BY campaign_id"
                    " ON CONFLICT (campaign_id, period, starts_on)"
                    f" DO UPDATE SET amount = {total_table}.amount + excluded.amount",
                    params,
                )
            SpendTally.objects.filter(pk=tally.pk).update(last_spend_id=last_id)
        cursor.execute(
            f"DELETE FROM {total_table} WHERE (period = %(day)s AND starts_on < %(today)s)"
            " OR (period = %(mon)s AND starts_on < %(month)s)",
            params,
        )
    return int(new_rows)


def _effective(table: str) -> str:
    """SQL: the table's aggregates, as the rule reads them, differ from the sums in `t`."""
    return (
        f"(CASE WHEN {table}.daily_spend_day = %(today)s THEN {table}.daily_spend ELSE 0 END) <> t.daily"
        f" OR (CASE WHEN {table}.monthly_spend_month = %(month)s THEN {table}.monthly_spend ELSE 0 END)"
        " <> t.monthly"
    )


def _reconcile(moment: Moment) -> Drift:
    """Set every aggregate to the sum of its Spend rows of the current day / month.

    The sums come from SpendTotal, brought up to date first, so the cost follows the number of
    campaigns and of new rows, not the month's rows. Only aggregates whose value (as the rule
    reads it: a stale period counts zero) differs are written, and moved to the current period in
    the same write; the counts are the drift that was repaired.
    """
    _tally_new_spend(moment)
    campaign_table, brand_table = Campaign._meta.db_table, Brand._meta.db_table
    total_table = SpendTotal._meta.db_table
    params = _adapted({"today": moment.today, "month": moment.month, "day": "D", "mon": "M"})
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {campaign_table} SET daily_spend = t.daily, monthly_spend = t.monthly,"
            " daily_spend_day = %(today)s, monthly_spend_month = %(month)s"
            " FROM ("
            "  SELECT c.id AS id, COALESCE(d.amount, 0) AS daily, COALESCE(m.amount, 0) AS monthly"
            f"  FROM {campaign_table} c"
            f"  LEFT JOIN {total_table} d"
            "   ON d.campaign_id = c.id AND d.period = %(day)s AND d.starts_on = %(today)s"
            f"  LEFT JOIN {total_table} m"
            "   ON m.campaign_id = c.id AND m.period = %(mon)s AND m.starts_on = %(month)s"
            " ) t"
            f" WHERE {campaign_table}.id = t.id AND ({_effective(campaign_table)})",
            params,
        )
        campaigns = cursor.rowcount
        cursor.execute(
            f"UPDATE {brand_table} SET daily_spend = t.daily, monthly_spend = t.monthly,"
            " daily_spend_day = %(today)s, monthly_spend_month = %(month)s"
            " FROM ("
            # A campaign still counting an earlier period adds nothing, as in the rule.
            "  SELECT b.id AS id,"
            "   COALESCE(SUM(CASE WHEN c.daily_spend_day = %(today)s THEN c.daily_spend ELSE 0 END), 0)"
            "   AS daily,"
            "   COALESCE(SUM(CASE WHEN c.monthly_spend_month = %(month)s THEN c.monthly_spend ELSE 0 END), 0)"
            "   AS monthly"
            f"  FROM {brand_table} b LEFT JOIN {campaign_table} c ON c.brand_id = b.id GROUP BY b.id"
            " ) t"
            f" WHERE {brand_table}.id = t.id AND ({_effective(brand_table)})",
            params,
        )
        brands = cursor.rowcount
    if campaigns or brands:
        logger.warning("repaired spend aggregates: %d campaigns, %d brands", campaigns, brands)
    return Drift(campaigns=campaigns, brands=brands)


def reset_budgets(
    *, daily: bool = True, monthly: bool = True, actor: str = SYSTEM_ACTOR, now: datetime | None = None
) -> JobReport:
    """The daily and/or monthly reset: roll stale aggregates over, then the rule for all.

    A roll-over, never a zeroing: run mid-period it finds nothing stale and changes nothing.
    """
    now = now or utc_now()
    moment = Moment.at(now)
    with transaction.atomic():
        lock_all_brands()
        rolled = _roll_over(moment, daily=daily, monthly=monthly)
        changes = apply_rule_in_sql(all_scope(), actor=actor, now=now)
    return JobReport(today=moment.today, rolled=rolled, changes=changes)


def enforce_dayparting(*, actor: str = SYSTEM_ACTOR, now: datetime | None = None) -> JobReport:
    """The rule for campaigns with dayparting rows (for all, when a missed reset was caught up)."""
    now = now or utc_now()
    moment = Moment.at(now)
    with transaction.atomic():
        lock_all_brands()
        rolled = _roll_over(moment, daily=True, monthly=True)
        scope = all_scope() if rolled.total else dayparted_scope()
        changes = apply_rule_in_sql(scope, actor=actor, now=now)
    return JobReport(today=moment.today, rolled=rolled, changes=changes)


def check_budgets(*, actor: str = SYSTEM_ACTOR, now: datetime | None = None) -> JobReport:
    """The periodic check: catch up resets, repair aggregates from Spend rows, rule for all."""
    now = now or utc_now()
    moment = Moment.at(now)
    with transaction.atomic():
        lock_all_brands()
        # Repaired rows move to the current period as they are written; the rest roll after.
        drift = _reconcile(moment)
        rolled = _roll_over(moment, daily=True, monthly=True)
        changes = apply_rule_in_sql(all_scope(), actor=actor, now=now)
    return JobReport(today=moment.today, rolled=rolled, changes=changes, drift=drift)

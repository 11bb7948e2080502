"""The spend write path in SQL: the aggregate update the batch and the one-statement path share, and
`record_spend` in one round trip on PostgreSQL.

Most spend changes nothing but two aggregates. `services.record_spend` takes eight statements for
it (lock the brand, lock the campaign, insert, two updates, read the dayparting windows, commit),
and on a small machine the round trips and the ORM cost ten times what PostgreSQL spends. The
function made here does the same on the server, with plans kept from call to call, and commits in
the same round trip. When the status rule has anything more to do (the campaign's status would
change, or its brand is at or over a budget) or something is off (the key is taken, the campaign
does not exist or moved to another brand), it raises FALLBACK_SQLSTATE: everything it did is
rolled back and `record_spend` takes its full path, which stays the only one that changes a
status. The function is (re)built after every `migrate` from the rule in `rules`, so it cannot
drift from the code that migrated the database.
"""

from contextlib import AbstractContextManager, nullcontext
from datetime import date, datetime
from typing import Any

from django.apps import AppConfig
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, transaction

from apps.budget.clock import month_start
from apps.budget.models import Brand, Campaign, DaypartingSchedule, Spend
from apps.budget.rules import BRAND_REACHED_SQL, Moment, status_rule_sql

FUNCTION = "budget_record_spend"
# A SQLSTATE of our own (class "BM" is not PostgreSQL's): "take the full path".
FALLBACK_SQLSTATE = "BM001"


def aggregates_added_sql(*, today: str, month: str, daily: str, monthly: str) -> str:
    """The SET list adding `daily` / `monthly` cents to a row's aggregates, rolling stale periods
    forward first (an aggregate still counting an earlier day or month starts again at 0)."""
    return (
        f"daily_spend = (CASE WHEN daily_spend_day < {today} THEN 0 ELSE daily_spend END) + {daily},"
        f" daily_spend_day = {today},"
        f" monthly_spend = (CASE WHEN monthly_spend_month < {month} THEN 0 ELSE monthly_spend END)"
        f" + {monthly},"
        f" monthly_spend_month = {month}"
    )


# The rule's named parameters, as the function's arguments.
RULE_ARGUMENTS = {"today": "p_today", "month": "p_month", "weekday": "p_weekday", "hour": "p_now_hour"}


def function_sql() -> str:
    rule = status_rule_sql(DaypartingSchedule._meta.db_table)
    campaigns, brands, spend = Campaign._meta.db_table, Brand._meta.db_table, Spend._meta.db_table
    added = aggregates_added_sql(today="p_today", month="p_month", daily="v_daily", monthly="v_monthly")
    fallback = f"USING ERRCODE = '{FALLBACK_SQLSTATE}'"
    step, brand_reached = rule.step % RULE_ARGUMENTS, BRAND_REACHED_SQL % RULE_ARGUMENTS
    return f"""
CREATE OR REPLACE FUNCTION {FUNCTION}(
    p_campaign bigint, p_amount bigint, p_date date, p_hour integer, p_external_id varchar,
    p_created_at timestamptz, p_today date, p_month date, p_weekday integer, p_now_hour integer
) RETURNS bigint LANGUAGE plpgsql AS $function$
DECLARE
    v_brand bigint;
    v_spend bigint;
    v_daily bigint := CASE WHEN p_date = p_today THEN p_amount ELSE 0 END;
    v_monthly bigint := CASE WHEN date_trunc('month', p_date)::date = p_month THEN p_amount ELSE 0 END;
    v_settled boolean;
BEGIN
    -- The brand row, then the campaign row: the order every writer locks in.
    SELECT brand_id INTO v_brand FROM {campaigns} WHERE id = p_campaign;
    PERFORM 1 FROM {brands} WHERE id = v_brand FOR NO KEY UPDATE;
    PERFORM 1 FROM {campaigns} WHERE id = p_campaign AND brand_id = v_brand FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'campaign % does not exist or moved', p_campaign {fallback};
    END IF;
    INSERT INTO {spend} (campaign_id, amount, date, hour, external_id, created_at)
        VALUES (p_campaign, p_amount, p_date, p_hour, p_external_id, p_created_at)
        ON CONFLICT (external_id) DO NOTHING RETURNING id INTO v_spend;
    IF v_spend IS NULL THEN
        RAISE EXCEPTION 'external_id % is taken', p_external_id {fallback};
    END IF;
    UPDATE {brands} SET {added} WHERE id = v_brand;
    UPDATE {campaigns} SET {added} WHERE id = p_campaign;
    WITH {rule.outcomes}
    SELECT o.status = c.status AND o.reason = c.pause_reason AND NOT ({brand_reached})
        INTO v_settled
        FROM {campaigns} c JOIN {brands} b ON b.id = c.brand_id JOIN outcomes o ON o.step = ({step})
        WHERE c.id = p_campaign;
    IF NOT v_settled THEN
        RAISE EXCEPTION 'the status rule has more to do for campaign %', p_campaign {fallback};
    END IF;
    RETURN v_spend;
END
$function$
"""


def create_function(sender: AppConfig, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    """post_migrate: (re)build the function from the current rule (PostgreSQL only)."""
    database = connections[using]
    if database.vendor != "postgresql":
        return
    with database.cursor() as cursor:
        cursor.execute(function_sql())


def record_in_one_statement(
    *, campaign_id: int, cents: int, day: date, hour: int, external_id: str | None, now: datetime
) -> int | None:
    """The new spend row's id, stored, counted and committed; None when the full path must run
    (nothing was stored then). Inside a transaction, a savepoint undoes the attempt instead."""
    moment = Moment.at(now)
    attempt: AbstractContextManager[object] = (
        transaction.atomic() if connection.in_atomic_block else nullcontext()
    )
    try:
        with attempt, connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {FUNCTION}(%s::bigint, %s::bigint, %s::date, %s::integer, %s::varchar,"
                " %s::timestamptz, %s::date, %s::date, %s::integer, %s::integer)",
                [
                    campaign_id,
                    cents,
                    day,
                    hour,
                    external_id,
                    now,
                    moment.today,
                    month_start(moment.today),
                    moment.weekday,
                    moment.hour,
                ],
            )
            row = cursor.fetchone()
    except DatabaseError as error:
        if getattr(error.__cause__, "sqlstate", None) == FALLBACK_SQLSTATE:
            return None
        raise
    if row is None:
        raise RuntimeError(f"{FUNCTION} returned no row")
    spend_id: int = row[0]
    return spend_id

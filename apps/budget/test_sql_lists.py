"""Lists and row sets as one JSON parameter: the same rows on PostgreSQL and SQLite, at any size."""

import pytest
from django.db import connection

from apps.budget.conftest import CampaignFactory
from apps.budget.models import Campaign
from apps.budget.sql_lists import in_list, rows_of

pytestmark = pytest.mark.django_db

# More than SQLite's 32,766 parameters per statement, had each value been a placeholder.
MANY = 40_000


def test_in_list_finds_exactly_the_listed_rows_however_many_are_listed() -> None:
    campaigns = CampaignFactory.create_batch(3)
    wanted = [campaigns[0].pk, campaigns[2].pk]
    # Ids that match nothing pad the list beyond any placeholder limit.
    padding = range(10**9, 10**9 + MANY)
    condition, params = in_list("id", "ids", [*padding, *wanted], "bigint")

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {Campaign._meta.db_table} WHERE {condition} ORDER BY id", params)
        found = [pk for (pk,) in cursor.fetchall()]

    assert found == wanted


def test_rows_of_gives_back_each_value_with_its_type() -> None:
    rows = [(1, "2026-03-18", 'it\'s "quoted", €'), (2**40, "2026-12-31", None)]
    source, params = rows_of("rows", (("n", "bigint"), ("day", "date"), ("label", "text")), rows)

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT v.n, v.day, v.label FROM {source} ORDER BY v.n", params)
        found = cursor.fetchall()

    # SQLite has no date type: a date is its ISO text there, as Django stores it.
    assert [(n, str(day), label) for n, day, label in found] == [
        (1, "2026-03-18", 'it\'s "quoted", €'),
        (2**40, "2026-12-31", None),
    ]

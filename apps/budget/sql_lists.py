"""Lists and row sets sent to the database as one JSON parameter, on PostgreSQL and SQLite alike.

A batch names thousands of campaigns, keys and rows. As one placeholder each they cost more to send
than the statement costs to run: psycopg splits and quotes the query text at every placeholder,
and SQLite allows at most 32,766 of them. One JSON document per list costs one placeholder.
"""

import json
from collections.abc import Iterable, Sequence

from django.db import connection

Param = dict[str, str]


def in_list(column: str, name: str, values: Iterable[int | str], sql_type: str) -> tuple[str, Param]:
    """SQL for `column IN values` and its one named parameter.

    On PostgreSQL the list is an array built before the scan, so the condition stays an index
    lookup (`= ANY(array)`) however long the list is, rather than a join against a set.
    """
    document = json.dumps(list(values))
    if connection.vendor == "postgresql":
        listed = f"ARRAY(SELECT value::{sql_type} FROM json_array_elements_text(%({name})s::json) AS value)"
        return f"{column} = ANY({listed})", {name: document}
    return f"{column} IN (SELECT value FROM json_each(%({name})s))", {name: document}


def rows_of(
    name: str, columns: Sequence[tuple[str, str]], rows: Iterable[Sequence[object]]
) -> tuple[str, Param]:
    """A FROM item `v` with the named, typed columns, and its one named parameter holding `rows`.

    Each row is a sequence in the order of `columns`; a value must be JSON (dates as ISO text).
    """
    document = json.dumps([list(row) for row in rows])
    if connection.vendor == "postgresql":
        picked = ", ".join(f"(r ->> {i})::{kind} AS {column}" for i, (column, kind) in enumerate(columns))
        return f"(SELECT {picked} FROM json_array_elements(%({name})s::json) AS r) AS v", {name: document}
    picked = ", ".join(
        f"json_extract(r.value, '$[{i}]') AS {column}" for i, (column, _kind) in enumerate(columns)
    )
    return f"(SELECT {picked} FROM json_each(%({name})s) AS r) AS v", {name: document}

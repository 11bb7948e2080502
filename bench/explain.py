"""Where a job's time goes: every statement it runs, with its time and its PostgreSQL plan.

The job runs once inside a transaction that is rolled back, with its statements captured; the same
statements then run again, in order and in another rolled-back transaction, each SELECT / INSERT /
UPDATE / DELETE under `EXPLAIN (ANALYZE, BUFFERS)` (which executes it, so each sees the state the
previous ones left) and the others (LOCK, SAVEPOINT, CREATE TEMPORARY TABLE) as they are.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

EXPLAINED = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")


@dataclass(frozen=True, slots=True)
class Statement:
    sql: str
    seconds: float
    plan: str


def explain(job: Callable[[], object]) -> list[Statement]:
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        job()
        transaction.set_rollback(True)
    statements: list[Statement] = []
    with transaction.atomic(), connection.cursor() as cursor:
        for query in captured.captured_queries:
            sql = query["sql"] or ""
            plan = ""
            if sql.lstrip().upper().startswith(EXPLAINED):
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
                plan = "\n".join(str(line) for (line,) in cursor.fetchall())
            else:
                cursor.execute(sql)
            statements.append(Statement(sql, float(query["time"] or 0), plan))
        transaction.set_rollback(True)
    return statements


def write(path: Path, title: str, statements: list[Statement]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    total = sum(statement.seconds for statement in statements)
    lines = [f"# {title}: {len(statements)} statements, {total:.3f} s in the first (captured) run", ""]
    for number, statement in enumerate(statements, 1):
        lines += [f"## {number}. {statement.seconds:.3f} s", statement.sql, ""]
        if statement.plan:
            lines += [statement.plan, ""]
    path.write_text("\n".join(lines))


def slowest(statements: list[Statement], count: int = 3) -> list[Statement]:
    return sorted(statements, key=lambda statement: statement.seconds, reverse=True)[:count]

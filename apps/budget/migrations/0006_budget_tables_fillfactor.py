"""Free room in every page of the brand and campaign tables (PostgreSQL).

Their aggregate columns are rewritten by every spend and every job. With room on its page,
PostgreSQL writes a row's new version there without touching any index (a HOT update); on full
pages every update also writes one entry per index. Measured on this project's machine class
(bench/README, "Performance"): a batch adding spend to 6,000 of 300,000 campaigns 278 -> 102 ms
(96% of updates HOT), a bare UPDATE of every row 4.8 -> 3.2 s.

Rows already stored move to roomier pages only when the table is rewritten: run
`VACUUM FULL budget_campaign` once in a quiet moment (it locks the table while it runs).
"""

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

TABLES = ("budget_brand", "budget_campaign")
FILLFACTOR = 80


def leave_room(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        for table in TABLES:
            schema_editor.execute(f"ALTER TABLE {table} SET (fillfactor = {FILLFACTOR})")


def fill_pages(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        for table in TABLES:
            schema_editor.execute(f"ALTER TABLE {table} RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("budget", "0005_spend_fewer_indexes"),
    ]

    operations = [
        migrations.RunPython(leave_room, fill_pages),
    ]

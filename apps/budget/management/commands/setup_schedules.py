"""Create or update the periodic jobs' schedules in django-celery-beat's tables.

`settings.CELERY_BEAT_SCHEDULE` is the one declaration. Beat's DatabaseScheduler upserts it when beat
starts; this command does the same upsert, with beat's own code, so that the schedules exist and
can be seen and edited in the admin right after `migrate`, before beat has ever run. Running it
again changes nothing. An edit made in the admin to one of these entries' schedule is replaced by
the declared one the next time this command or beat starts; pausing one (`enabled`) is kept.
"""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

# django-celery-beat ships no type information; what this command reads from it is plain values.
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from budget_system.celery import app

# The fields of a PeriodicTask that the declaration decides (beat's upsert writes exactly these).
DECLARED_FIELDS = (
    "task",
    "crontab_id",
    "interval_id",
    "solar_id",
    "clocked_id",
    "args",
    "kwargs",
    "queue",
    "exchange",
    "routing_key",
    "priority",
    "headers",
    "expire_seconds",
)


def _stored(name: str) -> dict[str, Any] | None:
    row: dict[str, Any] | None = PeriodicTask.objects.filter(name=name).values(*DECLARED_FIELDS).first()
    return row


def _outcome(before: dict[str, Any] | None, after: dict[str, Any]) -> tuple[str, str]:
    """("created" | "updated" | "unchanged", what to print)."""
    if before is None:
        return "created", "created"
    changed = [key for key in DECLARED_FIELDS if before[key] != after[key]]
    if changed:
        return "updated", f"updated ({', '.join(changed)})"
    return "unchanged", "unchanged"


def _describe(name: str) -> str:
    task = PeriodicTask.objects.select_related("crontab", "interval").get(name=name)
    schedule = task.crontab or task.interval or task.solar or task.clocked
    return f"{name}: {schedule} -> {task.task}"


class Command(BaseCommand):
    help = (
        "Create or update the periodic jobs (settings.CELERY_BEAT_SCHEDULE) in django-celery-beat's "
        "tables, as beat does at start-up. Idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Report what would be created or updated; write nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run: bool = options["dry_run"]
        verbosity: int = options["verbosity"]
        schedule: dict[str, dict[str, Any]] = settings.CELERY_BEAT_SCHEDULE
        counts = {"created": 0, "updated": 0, "unchanged": 0}
        with transaction.atomic():
            for name, entry in schedule.items():
                before = _stored(name)
                # Beat's own upsert (DatabaseScheduler.setup_schedule calls it for every entry),
                # so that this command and beat always store the same rows.
                DatabaseScheduler.Entry.from_entry(name, app=app, **entry)
                after = _stored(name)
                assert after is not None  # from_entry has just stored it
                outcome, label = _outcome(before, after)
                counts[outcome] += 1
                if verbosity >= 1:
                    line = f"{label}: {_describe(name)}"
                    self.stdout.write(line if outcome == "unchanged" else self.style.SUCCESS(line))
            if dry_run:
                transaction.set_rollback(True)
        summary = ", ".join(f"{count} {what}" for what, count in counts.items())
        suffix = " (dry run: nothing written)" if dry_run else ""
        self.stdout.write(f"{len(schedule)} schedules: {summary}{suffix}")

"""`python manage.py import_spend FILE.csv`: spend records from a CSV file, same rules as the API.

Columns (header row required): campaign_id, amount, date, hour, external_id (may be empty).
The file goes through `ingestion.record_spend_batch` in chunks, so a re-run is safe: lines whose
external_id is already stored with the same data are counted as duplicates, never twice.
Every failed line is reported with its line number, field and message; the command exits
non-zero when any line failed (the valid lines are stored all the same).
"""

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from apps.budget.ingestion import FIELDS, MAX_BATCH, RecordStatus, record_spend_batch

ACTOR = "command:import_spend"
DEFAULT_CHUNK = 1000
BAR_WIDTH = 30


@dataclass
class Tally:
    lines: int = 0
    created: int = 0
    duplicates: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


class Command(BaseCommand):
    help = (
        "Import spend records from a CSV file with columns campaign_id,amount,date,hour,external_id. "
        "Safe to re-run: stored external_ids count as duplicates. Exits 1 when any line failed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="CSV file with a header row")
        parser.add_argument(
            "--chunk-size",
            type=int,
            default=DEFAULT_CHUNK,
            help=f"records per transaction (1-{MAX_BATCH}, default {DEFAULT_CHUNK})",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="check every line (duplicates included) and report, but store nothing",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        chunk_size: int = options["chunk_size"]
        verbosity: int = options["verbosity"]
        if not 1 <= chunk_size <= MAX_BATCH:
            raise CommandError(f"--chunk-size must be from 1 to {MAX_BATCH}, not {chunk_size}")
        try:
            total = _count_records(path)
            with path.open(newline="", encoding="utf-8-sig") as handle, transaction.atomic():
                tally = self._import(handle, total, chunk_size, show_progress=verbosity >= 1)
                # Everything above ran for real, so the report is exact; then nothing is kept.
                transaction.set_rollback(options["dry_run"])
        except (OSError, UnicodeDecodeError, csv.Error) as error:
            raise CommandError(f"cannot read {path}: {error}") from error

        for line in tally.errors:
            self.stderr.write(line)
        if verbosity >= 1:
            stored = "would be created" if options["dry_run"] else "created"
            summary = (
                f"{path}: {tally.lines} lines, {tally.created} {stored}, "
                f"{tally.duplicates} duplicates skipped, {tally.failed} failed"
            )
            self.stdout.write(self.style.WARNING(summary) if tally.failed else self.style.SUCCESS(summary))
        if tally.failed:
            raise CommandError(f"{tally.failed} of {tally.lines} lines failed (listed above)")

    def _import(self, handle: TextIO, total: int, chunk_size: int, *, show_progress: bool) -> Tally:
        reader = csv.DictReader(handle)
        missing = [name for name in FIELDS if name not in (reader.fieldnames or [])]
        if missing:
            raise CommandError(
                f"the header row lacks {', '.join(missing)}; expected columns: {','.join(FIELDS)}"
            )
        tally = Tally()
        for chunk in _chunks(reader, chunk_size):
            results = record_spend_batch([record for _line, record in chunk], actor=ACTOR)
            for (line, _record), result in zip(chunk, results, strict=True):
                tally.lines += 1
                if result.status == RecordStatus.CREATED:
                    tally.created += 1
                elif result.status == RecordStatus.DUPLICATE:
                    tally.duplicates += 1
                else:
                    tally.failed += 1
                    tally.errors += [
                        f"line {line}: {name}: {message}"
                        for name, messages in result.errors.items()
                        for message in messages
                    ]
            if show_progress:
                self._progress(tally.lines, total)
        if show_progress and total:
            self.stderr.write("")
        return tally

    def _progress(self, done: int, total: int) -> None:
        share = done / total if total else 1.0
        filled = round(BAR_WIDTH * share)
        bar = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share:4.0%} {done}/{total} lines"
        # On a terminal the bar redraws in place; in a log each step is a line.
        if self.stderr.isatty():
            self.stderr.write(f"\r{bar}", ending="")
            self.stderr.flush()
        else:
            self.stderr.write(bar)


def _count_records(path: Path) -> int:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return max(sum(1 for _row in csv.reader(handle)) - 1, 0)


def _chunks(reader: "csv.DictReader[str]", size: int) -> Iterator[list[tuple[int, dict[str, object]]]]:
    chunk: list[tuple[int, dict[str, object]]] = []
    for row in reader:
        chunk.append((reader.line_num, _record(row)))
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _record(row: dict[str | Any, str | Any]) -> dict[str, object]:
    """A CSV row as a record: whole numbers where the API has integers, empty as missing."""
    record: dict[str, object] = {}
    for name in FIELDS:
        value = row.get(name)
        text = value.strip() if isinstance(value, str) else None
        if not text:
            record[name] = None
        elif name in {"campaign_id", "hour"} and text.isascii() and text.isdigit():
            record[name] = int(text)
        else:
            record[name] = text
    return record

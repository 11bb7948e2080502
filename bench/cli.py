"""The command line of the benchmark, and the environment it gives Django (and its subprocesses).

The benchmark empties the database it runs on, so it only runs on a database whose name says it
is disposable (it contains "bench" or "test"); `--database-url` beats `DATABASE_URL`, which beats
the local `bench` PostgreSQL database.
"""

import argparse
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import django

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench"
DISPOSABLE_MARKERS = ("bench", "test")
PARTS = ("jobs", "naive", "ingest", "admin")
# The naive baseline saves one row at a time: beyond this size it would take hours.
NAIVE_CAP = 100_000
SPEND_ROWS_PER_CAMPAIGN = 10


@dataclass(frozen=True, slots=True)
class Options:
    campaigns: int
    spend_rows: int
    database_url: str
    out: Path
    runs: int
    naive_runs: int
    naive_cap: int
    ingest_seconds: float
    parts: frozenset[str]
    explain: bool
    reuse: bool
    seed: int
    argv: tuple[str, ...]


def _positive(text: str) -> int:
    value = int(text.replace("_", "").replace(",", ""))
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def _parts(text: str) -> frozenset[str]:
    chosen = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = chosen - set(PARTS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown part(s) {sorted(unknown)}; choose from {PARTS}")
    return chosen


def parse(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Build a data set of N campaigns and time the jobs, ingestion and the admin list.",
    )
    parser.add_argument("--campaigns", type=_positive, required=True, help="N campaigns over N/10 brands")
    parser.add_argument(
        "--spend-rows",
        type=_positive,
        help=f"spend rows in the current UTC month (default {SPEND_ROWS_PER_CAMPAIGN} per campaign)",
    )
    parser.add_argument(
        "--database-url",
        help=f"database to build on (default: DATABASE_URL, else {DEFAULT_DATABASE_URL}); it is emptied",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results"), help="where JSON and PNG go")
    parser.add_argument("--runs", type=_positive, default=5, help="timed runs per figure (median)")
    parser.add_argument("--naive-runs", type=_positive, default=3, help="timed runs of the naive baseline")
    parser.add_argument(
        "--naive-cap", type=_positive, default=NAIVE_CAP, help="largest size the naive baseline runs at"
    )
    parser.add_argument(
        "--ingest-seconds", type=float, default=10.0, help="how long each record_spend throughput runs"
    )
    parser.add_argument(
        "--parts", type=_parts, default=frozenset(PARTS), help=f"comma-separated subset of {','.join(PARTS)}"
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="also write EXPLAIN (ANALYZE, BUFFERS) of every statement of each job (PostgreSQL)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the data set already loaded when it has the same size and day (skips the load)",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated data")
    args = parser.parse_args(argv)
    if args.ingest_seconds <= 0:
        parser.error("--ingest-seconds must be positive")
    return Options(
        campaigns=args.campaigns,
        spend_rows=args.spend_rows or args.campaigns * SPEND_ROWS_PER_CAMPAIGN,
        database_url=args.database_url or os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
        out=args.out,
        runs=args.runs,
        naive_runs=args.naive_runs,
        naive_cap=args.naive_cap,
        ingest_seconds=args.ingest_seconds,
        parts=args.parts,
        explain=args.explain,
        reuse=args.reuse,
        seed=args.seed,
        argv=tuple(argv),
    )


def database_name(url: str) -> str:
    parsed = urlparse(url)
    return parsed.path.rsplit("/", 1)[-1]


def is_disposable(url: str) -> bool:
    name = database_name(url).lower()
    return any(marker in name for marker in DISPOSABLE_MARKERS)


def configure_environment(database_url: str) -> None:
    """Settings for this process and the subprocesses it starts (they inherit the environment).

    DEBUG is off as in production: with it on, Django wraps every cursor to log each query.
    """
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "budget_system.settings")
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", f"bench-{secrets.token_urlsafe(32)}")
    # The test client speaks plain HTTP to the admin and the API.
    os.environ["SECURE_SSL_REDIRECT"] = "false"
    # The jobs log a line per run and a warning for every drift the work runs create on purpose.
    os.environ.setdefault("BUDGET_LOG_LEVEL", "ERROR")


def main(argv: list[str] | None = None) -> int:
    options = parse(sys.argv[1:] if argv is None else argv)
    if not is_disposable(options.database_url):
        print(
            f"refusing to run on database {database_name(options.database_url)!r}: the benchmark empties "
            f"it; use a database whose name contains {' or '.join(DISPOSABLE_MARKERS)!r} (--database-url)",
            file=sys.stderr,
        )
        return 2
    configure_environment(options.database_url)
    django.setup()
    # Imported only now: the runner imports the models, which need the settings configured above.
    from bench.runner import run  # noqa: PLC0415

    return run(options)

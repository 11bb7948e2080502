"""One benchmark run, in order: schema, data set, floor, jobs (work and steady state, and memory),
naive baseline, statement plans, admin list, ingestion; then the table, JSON and chart.

Every timed run of a job starts from the same state: the derived columns are restored from the
snapshot taken after the load, the run's scenario is applied (for a "work" run), and the changed
tables are vacuumed; none of that is timed.

- work: the job has every row to do. The resets find every daily (monthly) aggregate counting
  yesterday (last month), as at midnight; the dayparting job finds every dayparted campaign in
  the opposite state, as at the hour its windows turn; the check finds every aggregate counting
  yesterday and last month (the first check after a missed midnight on the 1st).
- steady: the state is already right, as on most runs of a job; it reads everything and writes
  nothing.
"""

import os
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from time import perf_counter
from typing import Any

import psycopg
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from psycopg import sql

from apps.budget import tasks
from apps.budget.models import Brand, Campaign, DaypartingSchedule, Spend
from bench import dataset, explain, ingest, naive
from bench.admin_list import admin_list_timing
from bench.cli import Options
from bench.measure import Memory, Timing, memory_of, time_runs
from bench.report import (
    Figure,
    Report,
    Target,
    code_version,
    machine_facts,
    render,
    verdict,
    write_chart,
    write_json,
)

MODES = ("work", "steady")
COPY_FLOOR_ROWS = 100_000
RECORD_SPEND_WINDOWS = 3
BATCH_SIZES = (100, 10_000)
TARGET_FLOOR_RATIO = 3.0
TARGET_FLOOR_AT = 1_000_000
TARGET_RSS_MB = 150.0
TARGET_NAIVE_SPEEDUP = 100.0
TARGET_NAIVE_AT = 100_000
TARGET_CHECK_SECONDS = 10.0
TARGET_CHECK_SPEND_ROWS = 10_000_000
TARGET_RECORD_SPEND_RATE = 1_000.0
TARGET_BATCH_RATE = 50_000.0
TARGET_ADMIN_SECONDS = 0.300
NAIVE_ACTOR = "job:naive-baseline"


@dataclass(frozen=True, slots=True)
class JobSpec:
    name: str
    work: str
    scenario: dataset.Scenario
    naive: Callable[[int], naive.Saved]

    def task(self) -> Callable[[], dict[str, Any]]:
        job: Callable[[], dict[str, Any]] = getattr(tasks, self.name)
        return job


JOBS = (
    JobSpec(
        "reset_daily_budgets",
        "every daily aggregate counts yesterday",
        dataset.make_daily_stale,
        lambda limit: naive.reset(daily=True, monthly=False, limit=limit, actor=NAIVE_ACTOR),
    ),
    JobSpec(
        "reset_monthly_budgets",
        "every monthly aggregate counts last month",
        dataset.make_monthly_stale,
        lambda limit: naive.reset(daily=False, monthly=True, limit=limit, actor=NAIVE_ACTOR),
    ),
    JobSpec(
        "enforce_dayparting",
        "every dayparted campaign in the opposite state",
        dataset.flip_dayparted,
        lambda limit: naive.enforce_dayparting(limit=limit, actor=NAIVE_ACTOR),
    ),
    JobSpec(
        "check_campaign_budgets",
        "every aggregate counts yesterday and last month",
        dataset.make_all_stale,
        lambda limit: naive.check(limit=limit, actor=NAIVE_ACTOR),
    ),
)


class Progress:
    """Progress lines on stderr (stdout carries the table), with the time since the start."""

    def __init__(self) -> None:
        self.started = perf_counter()

    def __call__(self, message: str) -> None:
        print(f"[bench {perf_counter() - self.started:7.1f}s] {message}", file=sys.stderr, flush=True)


def describe_job(summary: object) -> str:
    if not isinstance(summary, dict):
        return ""
    rolled = sum(summary.get("rolled", {}).values())
    drift = summary.get("drift", {})
    parts = [f"rolled {rolled:,}"]
    if drift:
        parts.append(f"repaired {drift.get('campaigns', 0):,} campaigns / {drift.get('brands', 0):,} brands")
    parts.append(f"{summary.get('status_changes', 0):,} status changes")
    return ", ".join(parts)


def describe_naive(saved: object) -> str:
    return saved.describe() if isinstance(saved, naive.Saved) else ""


def ensure_database() -> bool:
    """Create the PostgreSQL database when it does not exist yet (a fresh clone); True if created."""
    if connection.vendor != "postgresql":
        return False
    settings = connection.settings_dict
    with psycopg.connect(
        dbname="postgres",
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        user=settings["USER"] or None,
        password=settings["PASSWORD"] or None,
        autocommit=True,
    ) as server:
        if server.execute("SELECT 1 FROM pg_database WHERE datname = %s", [settings["NAME"]]).fetchone():
            return False
        server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(settings["NAME"])))
    return True


def floor_update() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {Campaign._meta.db_table} SET daily_budget = daily_budget")


class Run:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.progress = Progress()
        self.shape = dataset.Shape(
            campaigns=options.campaigns, spend_rows=options.spend_rows, seed=options.seed, now=timezone.now()
        )
        self.naive_size = min(options.campaigns, options.naive_cap)
        self.timings: dict[tuple[str, str], Timing] = {}
        self.naive_timings: dict[tuple[str, str], Timing] = {}
        self.memory: dict[str, Memory] = {}
        self.report = Report(
            meta={
                "started_at": self.shape.now.strftime("%Y-%m-%d %H:%M:%S UTC"),
                "command": " ".join(["python -m bench", *options.argv]),
                "options": {
                    "campaigns": options.campaigns,
                    "spend_rows": options.spend_rows,
                    "runs": options.runs,
                    "naive_runs": options.naive_runs,
                    "naive_size": self.naive_size,
                    "ingest_seconds": options.ingest_seconds,
                    "parts": sorted(options.parts),
                    "seed": options.seed,
                },
                "modes": {
                    "work": "the job has every row to do (scenario per job, see dataset)",
                    "steady": "the state is already right: reads everything, writes nothing",
                },
            },
            machine={},
            dataset={},
        )

    # --- steps ---------------------------------------------------------------------------------------

    def still_same_day(self) -> None:
        """The data set and the scenarios are of one UTC day: past midnight, figures would mix days."""
        if timezone.now().date() != self.shape.today:
            raise RuntimeError(
                f"UTC midnight passed during the benchmark (data set of {self.shape.today}): the "
                "scenarios no longer hold; run it again"
            )

    def prepare(self, spec: JobSpec, mode: str) -> Callable[[], None]:
        def prepare() -> None:
            self.still_same_day()
            dataset.restore()
            if mode == "work":
                spec.scenario(self.shape)
            dataset.vacuum(Brand, Campaign)

        return prepare

    def build(self) -> None:
        self.progress("migrating the schema")
        call_command("migrate", verbosity=0, interactive=False)
        if self.options.reuse and dataset.loaded_shape_matches(self.shape):
            self.progress("reusing the data set already loaded; one check for spend added since")
            # An earlier run's ingestion added spend after the snapshot: count it, then snapshot.
            dataset.restore()
            tasks.check_campaign_budgets()
            dataset.vacuum(Brand, Campaign)
            dataset.take_snapshot(self.shape)
            self.report.dataset["reused"] = True
        else:
            self.progress(
                f"loading {self.shape.campaigns:,} campaigns and {self.shape.spend_rows:,} spend rows"
            )
            for loaded in dataset.load(self.shape):
                self.progress(f"  {loaded.table}: {loaded.rows:,} rows in {loaded.seconds:.1f} s")
                self.report.figures.append(
                    Figure(
                        key=f"load:{loaded.table}",
                        group="load",
                        label=f"load {loaded.table} ({loaded.rows:,} rows)",
                        value=loaded.rows_per_second,
                        unit="/s",
                        runs=1,
                        detail=f"{loaded.seconds:.1f} s, generated while copied",
                    )
                )
            self.progress("first check after the load (tallies every spend row, applies the rule)")
            started = perf_counter()
            summary = tasks.check_campaign_budgets()
            seconds = perf_counter() - started
            self.report.figures.append(
                Figure(
                    key="load:first_check",
                    group="load",
                    label="check_campaign_budgets, first run after load",
                    value=seconds,
                    unit="s",
                    runs=1,
                    detail=describe_job(summary),
                )
            )
            self.progress("vacuum and snapshot")
            dataset.vacuum()
            dataset.take_snapshot(self.shape)
            self.report.dataset["reused"] = False
        self.report.dataset.update(
            campaigns=Campaign.objects.count(),
            brands=Brand.objects.count(),
            spend_rows=Spend.objects.count(),
            dayparting_rows=DaypartingSchedule.objects.count(),
            dayparted_campaigns=DaypartingSchedule.objects.values("campaign_id").distinct().count(),
            statuses=dataset.status_mix(),
            today=self.shape.today.isoformat(),
        )

    def floor(self) -> None:
        self.progress("floor: bare UPDATE of one column over every campaign row")
        timing = time_runs(self.options.runs, floor_update, prepare=lambda: dataset.vacuum(Campaign))
        self.report.figures.append(
            Figure(
                key="floor",
                group="floor",
                label="floor: UPDATE budget_campaign SET daily_budget = daily_budget",
                value=timing.median,
                unit="s",
                runs=timing.runs,
                detail=f"{self.shape.campaigns:,} rows",
                samples=timing.seconds,
            )
        )

    def jobs(self) -> None:
        for spec in JOBS:
            for mode in MODES:
                self.progress(f"{spec.name} ({mode}) x{self.options.runs}")
                self.timings[spec.name, mode] = time_runs(
                    self.options.runs, spec.task(), prepare=self.prepare(spec, mode), describe=describe_job
                )
            self.progress(f"{spec.name}: memory in a fresh process (work)")
            self.prepare(spec, "work")()
            self.memory[spec.name] = memory_of(spec.name)
        dataset.restore()

    def naive(self) -> None:
        for spec in JOBS:
            for mode in MODES:
                self.progress(f"naive {spec.name} ({mode}) at {self.naive_size:,} x{self.options.naive_runs}")
                self.naive_timings[spec.name, mode] = time_runs(
                    self.options.naive_runs,
                    partial(spec.naive, self.naive_size),
                    prepare=self.prepare(spec, mode),
                    describe=describe_naive,
                )
        dataset.restore()

    def explain(self) -> None:
        if connection.vendor != "postgresql":
            self.progress("--explain needs PostgreSQL: skipped")
            return
        for spec in JOBS:
            for mode in MODES:
                self.progress(f"EXPLAIN ANALYZE of {spec.name} ({mode})")
                self.prepare(spec, mode)()
                statements = explain.explain(spec.task())
                path = self.options.out / "explain" / f"{spec.name}-{mode}.txt"
                explain.write(path, f"{spec.name} ({mode}) at {self.shape.campaigns:,} campaigns", statements)
                self.report.slowest_statements[f"{spec.name} ({mode})"] = [
                    {"seconds": statement.seconds, "sql": statement.sql}
                    for statement in explain.slowest(statements)
                ]
        dataset.restore()

    def admin(self) -> None:
        self.progress("admin campaign list")
        timing = admin_list_timing(self.options.runs)
        self.report.figures.append(
            Figure(
                key="admin:campaign_list",
                group="admin",
                label="admin GET /admin/budget/campaign/",
                value=timing.median,
                unit="s",
                runs=timing.runs,
                detail=timing.detail,
                samples=timing.seconds,
            )
        )

    def ingestion(self) -> None:
        self.still_same_day()
        seconds = self.options.ingest_seconds
        copy_rows = min(COPY_FLOOR_ROWS, max(self.shape.spend_rows, 1_000))
        self.progress(f"COPY floor: {copy_rows:,} spend rows (rolled back)")
        copy_rate = dataset.copy_floor(self.shape, copy_rows).rows_per_second
        copy_floor = self._rate(
            key="ingest:copy",
            label="floor: COPY into budget_spend",
            rates=[copy_rate],
            detail=f"{copy_rows:,} rows, indexes as in the schema",
        )
        self.progress(f"commit floor: single-row INSERTs, one transaction each, for {seconds:g} s")
        commit_floor = self._rate(
            key="ingest:commit",
            label="floor: one spend INSERT per transaction",
            rates=[ingest.commit_floor_rate(ingest.active_campaigns(seed=self.options.seed), seconds)],
            detail="the most record_spend calls one process can commit; rows deleted after",
        )
        seed = self.options.seed
        groups = {
            "ingest:record_spend:1": ("record_spend, 1 process", [ingest.active_campaigns(seed=seed)]),
            "ingest:record_spend:2": (
                "record_spend, 2 processes, different brands",
                [
                    ingest.active_campaigns(seed=seed, brand_parity=0),
                    ingest.active_campaigns(seed=seed, brand_parity=1),
                ],
            ),
            "ingest:record_spend:2-same-brand": (
                "record_spend, 2 processes, same brand",
                list(ingest.one_brand_campaigns()),
            ),
        }
        windows = min(self.options.runs, RECORD_SPEND_WINDOWS)
        single_rate = 0.0
        for key, (label, campaign_groups) in groups.items():
            self.progress(f"{label}: {windows} windows of {seconds:g} s")
            throughputs = [ingest.record_spend_rate(campaign_groups, seconds) for _ in range(windows)]
            rates = [throughput.per_second for throughput in throughputs]
            single_rate = single_rate or statistics.median(rates)
            calls = "; ".join(", ".join(f"{n:,}" for n in t.calls) for t in throughputs)
            self._rate(
                key=key,
                label=label,
                rates=rates,
                detail=f"calls per process per window: {calls}",
                floor=commit_floor,
            )
        everyone = range(1, self.shape.campaigns + 1)
        batches = [
            (
                f"ingest:api:{size}",
                f"batch API POST /api/v1/spend, {size:,} records",
                size,
                ingest.batch_api_timing,
            )
            for size in BATCH_SIZES
        ]
        size = BATCH_SIZES[-1]
        batches.append(
            (
                f"ingest:function:{size}",
                f"ingestion.record_spend_batch, {size:,} records (no HTTP)",
                size,
                ingest.batch_function_timing,
            )
        )
        for key, label, size, measure in batches:
            runs = self.options.runs * (4 if size <= 100 else 1)
            self.progress(f"{label} x{runs}")
            timing = measure(size, runs, everyone, seed)
            self._rate(
                key=key,
                label=label,
                rates=[size / sample for sample in timing.seconds],
                detail=f"{timing.median * 1000:,.0f} ms per batch; {timing.detail}",
                floor=copy_floor,
                single_rate=single_rate,
            )

    def _rate(
        self,
        *,
        key: str,
        label: str,
        rates: list[float],
        detail: str,
        floor: Figure | None = None,
        single_rate: float | None = None,
    ) -> Figure:
        rate = statistics.median(rates)
        figure = Figure(
            key=key,
            group="ingestion",
            label=label,
            value=rate,
            unit="/s",
            runs=len(rates),
            samples=tuple(rates),
            floor_ratio=rate / floor.value if floor else None,
            floor_name=floor.key.removeprefix("ingest:") if floor else "",
            naive_value=single_rate,
            naive_speedup=rate / single_rate if single_rate else None,
            detail=detail,
        )
        self.report.figures.append(figure)
        return figure

    # --- figures and targets -------------------------------------------------------------------------------

    def job_figures(self) -> None:
        floor = self.report.figure("floor")
        campaigns = self.shape.campaigns
        for spec in JOBS:
            memory = self.memory.get(spec.name)
            for mode in MODES:
                timing = self.timings[spec.name, mode]
                naive_timing = self.naive_timings.get((spec.name, mode))
                naive_per_n = naive_timing.median * campaigns / self.naive_size if naive_timing else None
                self.report.figures.append(
                    Figure(
                        key=f"job:{spec.name}:{mode}",
                        group="jobs",
                        label=f"{spec.name} ({mode})",
                        value=timing.median,
                        unit="s",
                        runs=timing.runs,
                        floor_ratio=timing.median / floor.value if floor else None,
                        naive_value=naive_timing.median if naive_timing else None,
                        naive_size=self.naive_size if naive_timing else None,
                        naive_speedup=naive_per_n / timing.median if naive_per_n else None,
                        rss_mb=memory.peak_mb if memory and mode == "work" else None,
                        rss_added_mb=memory.added_mb if memory and mode == "work" else None,
                        detail=timing.detail
                        + (f"; naive: {naive_timing.detail}" if naive_timing else "")
                        + (f" [{spec.work}]" if mode == "work" else ""),
                        samples=timing.seconds,
                    )
                )

    def targets(self) -> None:
        targets = self.report.targets
        campaigns = self.shape.campaigns
        size_note = f"run at {campaigns:,} campaigns"
        for spec in JOBS:
            work = self.report.figure(f"job:{spec.name}:work")
            if work is None:
                continue
            if work.floor_ratio is not None:
                targets.append(
                    Target(
                        f"{spec.name} <= {TARGET_FLOOR_RATIO:g}x floor at {TARGET_FLOOR_AT:,} (work run)",
                        f"{work.floor_ratio:.2f}x ({work.value:.2f} s)",
                        verdict(work.floor_ratio <= TARGET_FLOOR_RATIO, applies=campaigns >= TARGET_FLOOR_AT),
                        "" if campaigns >= TARGET_FLOOR_AT else size_note,
                    )
                )
            if work.rss_mb is not None and work.rss_added_mb is not None:
                targets.append(
                    Target(
                        f"{spec.name} process peak RSS <= {TARGET_RSS_MB:g} MB, flat in N",
                        f"{work.rss_mb:.0f} MB (+{work.rss_added_mb:.1f} MB over idle)",
                        verdict(work.rss_mb <= TARGET_RSS_MB),
                        size_note,
                    )
                )
            speedups = [
                figure.naive_speedup
                for mode in MODES
                if (figure := self.report.figure(f"job:{spec.name}:{mode}")) and figure.naive_speedup
            ]
            if speedups:
                applies = self.naive_size == TARGET_NAIVE_AT
                targets.append(
                    Target(
                        f"{spec.name} >= {TARGET_NAIVE_SPEEDUP:g}x faster than naive at {TARGET_NAIVE_AT:,}",
                        f"{min(speedups):,.0f}x (slower of work / steady)",
                        verdict(min(speedups) >= TARGET_NAIVE_SPEEDUP, applies=applies),
                        "" if applies else f"naive ran at {self.naive_size:,}",
                    )
                )
        check = [self.report.figure(f"job:check_campaign_budgets:{mode}") for mode in MODES]
        check_seconds = [figure.value for figure in check if figure is not None]
        if check_seconds:
            applies = campaigns == TARGET_NAIVE_AT and self.shape.spend_rows >= TARGET_CHECK_SPEND_ROWS
            targets.append(
                Target(
                    f"check_campaign_budgets <= {TARGET_CHECK_SECONDS:g} s at {TARGET_NAIVE_AT:,} campaigns "
                    f"with {TARGET_CHECK_SPEND_ROWS:,} spend rows",
                    f"{max(check_seconds):.2f} s (slower of work / steady)",
                    verdict(max(check_seconds) <= TARGET_CHECK_SECONDS, applies=applies),
                    "" if applies else f"{size_note}, {self.shape.spend_rows:,} spend rows",
                )
            )
        single = self.report.figure("ingest:record_spend:1")
        if single is not None:
            targets.append(
                Target(
                    f"record_spend >= {TARGET_RECORD_SPEND_RATE:,.0f} calls/s in one process",
                    f"{single.value:,.0f} /s",
                    verdict(single.value >= TARGET_RECORD_SPEND_RATE),
                )
            )
        batch = self.report.figure(f"ingest:api:{BATCH_SIZES[-1]}")
        if batch is not None:
            targets.append(
                Target(
                    f"batch API >= {TARGET_BATCH_RATE:,.0f} records/s at {BATCH_SIZES[-1]:,} per batch",
                    f"{batch.value:,.0f} /s",
                    verdict(batch.value >= TARGET_BATCH_RATE),
                )
            )
        admin = self.report.figure("admin:campaign_list")
        if admin is not None:
            applies = campaigns >= TARGET_FLOOR_AT
            targets.append(
                Target(
                    f"admin campaign list < {TARGET_ADMIN_SECONDS * 1000:.0f} ms at {TARGET_FLOOR_AT:,}",
                    f"{admin.value * 1000:,.0f} ms",
                    verdict(admin.value < TARGET_ADMIN_SECONDS, applies=applies),
                    "" if applies else size_note,
                )
            )

    def execute(self) -> Report:
        if ensure_database():
            self.progress(f"created database {connection.settings_dict['NAME']}")
        self.report.machine = machine_facts()
        self.report.meta["code_at_start"] = code_version()
        self.build()
        parts = self.options.parts
        if "jobs" in parts:
            self.floor()
            self.jobs()
        if "naive" in parts:
            self.naive()
        if self.options.explain:
            self.explain()
        if "jobs" in parts:
            self.job_figures()
        if "admin" in parts:
            self.admin()
        if "ingest" in parts:
            self.ingestion()
        self.targets()
        self.still_same_day()
        self.report.machine["load_average_at_end"] = os.getloadavg()
        self.report.meta["code_at_end"] = code_version()
        self.report.meta["seconds"] = round(perf_counter() - self.progress.started, 1)
        return self.report


def run(options: Options) -> int:
    benchmark = Run(options)
    report = benchmark.execute()
    print(render(report))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    json_path = write_json(report, options.out, stamp)
    chart_path = options.out / "latest.png"
    write_chart(report, chart_path)
    print(f"\nWrote {json_path}, {options.out / 'latest.json'}, {options.out / 'latest.md'} and {chart_path}")
    return 0

"""The benchmark's output: a table on stdout, the same as JSON, and a PNG chart, plus machine facts."""

import json
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from django.db import connection
from matplotlib.axes import Axes
from matplotlib.figure import Figure as Chart

Verdict = Literal["PASS", "MISS", "n/a"]
PG_SETTINGS = (
    "shared_buffers",
    "work_mem",
    "maintenance_work_mem",
    "effective_cache_size",
    "max_wal_size",
    "synchronous_commit",
    "jit",
)


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure. `value` is seconds (unit "s") or a rate (unit "/s").

    `floor_ratio`: for a job, its time over the bare UPDATE's; for ingestion, its rate over the
    rate of its floor, named by `floor_name` (COPY for batches, single-row commits for record_spend).
    `naive_speedup`: how many times faster than the naive baseline, per campaign when the baseline
    ran on fewer campaigns (`naive_size`); for batch ingestion, over single record_spend calls.
    """

    key: str
    group: str
    label: str
    value: float
    unit: str
    runs: int
    floor_ratio: float | None = None
    floor_name: str = ""
    naive_value: float | None = None
    naive_size: int | None = None
    naive_speedup: float | None = None
    rss_mb: float | None = None
    rss_added_mb: float | None = None
    detail: str = ""
    samples: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class Target:
    text: str
    measured: str
    verdict: Verdict
    note: str = ""


def verdict(ok: bool, *, applies: bool = True) -> Verdict:
    if not applies:
        return "n/a"
    return "PASS" if ok else "MISS"


@dataclass(slots=True)
class Report:
    meta: dict[str, Any]
    machine: dict[str, Any]
    dataset: dict[str, Any]
    figures: list[Figure] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    slowest_statements: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def figure(self, key: str) -> Figure | None:
        return next((figure for figure in self.figures if figure.key == key), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": 1,
            "meta": self.meta,
            "machine": self.machine,
            "dataset": self.dataset,
            "figures": [asdict(figure) for figure in self.figures],
            "targets": [asdict(target) for target in self.targets],
            "slowest_statements": self.slowest_statements,
        }


# --- Machine -------------------------------------------------------------------------------------------


def _proc_value(path: str, key: str) -> str | None:
    try:
        with Path(path).open() as lines:
            for line in lines:
                name, _, value = line.partition(":")
                if name.strip() == key:
                    return value.strip()
    except OSError:
        return None
    return None


# What decides the figures: a commit that only touches the README or the tests is the same code.
APPLICATION = ("apps", "budget_system", "requirements.txt")


def _git(*args: str) -> str:
    # git from PATH with fixed arguments, as a developer runs it.
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()  # noqa: S603, S607


def code_version() -> str:
    """The last commit that changed the application, with "+changes" when the working tree differs."""
    try:
        commit = _git("log", "-1", "--format=%h", "--", *APPLICATION)
        changes = _git("status", "--porcelain", "--", *APPLICATION)
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{commit}+changes" if changes else commit


def machine_facts() -> dict[str, Any]:
    memory = _proc_value("/proc/meminfo", "MemTotal")
    facts: dict[str, Any] = {
        "cpu": _proc_value("/proc/cpuinfo", "model name") or platform.processor(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gb": round(int(memory.split()[0]) / 1024 / 1024, 1) if memory else None,
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
        "database": connection.vendor,
    }
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
            facts["database_version"] = f"PostgreSQL {cursor.fetchone()[0]}"
            settings: dict[str, str] = {}
            for name in PG_SETTINGS:
                cursor.execute(f"SHOW {name}")
                settings[name] = str(cursor.fetchone()[0])
            facts["database_settings"] = settings
        else:
            cursor.execute("SELECT sqlite_version()")
            facts["database_version"] = f"SQLite {cursor.fetchone()[0]}"
    return facts


# --- Text table -----------------------------------------------------------------------------------------


def _value(figure: Figure) -> str:
    if figure.unit == "/s":
        return f"{figure.value:,.0f} /s"
    if figure.value < 1:
        return f"{figure.value * 1000:,.1f} ms"
    return f"{figure.value:,.2f} s"


def _ratio(value: float | None, suffix: str) -> str:
    if value is None:
        return ""
    return f"{value:,.2f}{suffix}" if value < 10 else f"{value:,.0f}{suffix}"


def _naive(figure: Figure) -> str:
    if figure.naive_value is None:
        return ""
    if figure.unit == "/s":
        return f"{figure.naive_value:,.0f} /s"
    size = f" @{figure.naive_size:,}" if figure.naive_size else ""
    return f"{figure.naive_value:,.2f} s{size}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> list[str]:
    widths = [max(len(header), *(len(row[i]) for row in rows)) for i, header in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(width) if align else cell.ljust(width)
            for cell, width, align in zip(cells, widths, right, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return [line(headers), line(["-" * width for width in widths]), *(line(row) for row in rows)]


def _code(meta: dict[str, Any]) -> str:
    start, end = meta.get("code_at_start"), meta.get("code_at_end")
    return f"{start}" if start == end else f"{start} at the start, {end} at the end"


FIGURE_HEADERS = ("Figure", "Value", "Runs", "vs floor", "Naive", "x faster", "RSS MB", "Detail")
TARGET_HEADERS = ("Target", "Measured", "Result", "Note")
LEGEND = (
    "vs floor: job time / bare UPDATE of all campaign rows; ingestion rate / its floor's rate (copy: "
    "COPY, for batches; commit: one single-row INSERT per transaction, for record_spend). x faster: "
    "naive baseline time (scaled per campaign when it ran on fewer) / job time; for batches, "
    "over single record_spend calls. RSS: peak of a fresh job process (+ over the same process idle)."
)


def _figure_rows(report: Report) -> list[tuple[str, ...]]:
    return [
        (
            figure.label,
            _value(figure),
            str(figure.runs),
            _ratio(figure.floor_ratio, f"x {figure.floor_name}".rstrip()),
            _naive(figure),
            _ratio(figure.naive_speedup, "x"),
            f"{figure.rss_mb:.0f} (+{figure.rss_added_mb:.0f})" if figure.rss_mb is not None else "",
            figure.detail,
        )
        for figure in report.figures
    ]


def _target_rows(report: Report) -> list[tuple[str, ...]]:
    return [(target.text, target.measured, target.verdict, target.note) for target in report.targets]


def _heading(report: Report) -> list[str]:
    meta, machine, dataset = report.meta, report.machine, report.dataset
    return [
        f"Benchmark {meta['started_at']}: {dataset['campaigns']:,} campaigns, {dataset['brands']:,} brands, "
        f"{dataset['spend_rows']:,} spend rows, {dataset['dayparting_rows']:,} dayparting rows",
        f"Machine: {machine['cores']} cores ({machine['cpu']}), {machine['memory_gb']} GB, "
        f"{machine['database_version']}; load average at start {machine['load_average_at_start'][0]:.2f}"
        " (shared machine: figures are noisy)",
        f"Command: {meta['command']}   Code: {_code(meta)}",
    ]


def render(report: Report) -> str:
    lines = [*_heading(report), ""]
    lines += _table(FIGURE_HEADERS, _figure_rows(report), (False, True, True, True, True, True, True, False))
    lines += ["", LEGEND, ""]
    lines += _table(TARGET_HEADERS, _target_rows(report), (False, False, False, False))
    for job, statements in report.slowest_statements.items():
        lines += ["", f"Slowest statements of {job}:"]
        lines += [f"  {s['seconds']:8.3f} s  {s['sql'][:150]}" for s in statements]
    return "\n".join(lines)


def _markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return [line(headers), line(["---"] * len(headers)), *(line(row) for row in rows)]


def render_markdown(report: Report) -> str:
    """The same tables in Markdown, to paste into the README's Performance section."""
    lines = [f"{line}  " for line in _heading(report)]
    lines += ["", *_markdown_table(FIGURE_HEADERS, _figure_rows(report)), "", LEGEND, ""]
    lines += _markdown_table(TARGET_HEADERS, _target_rows(report))
    return "\n".join(lines) + "\n"


# --- Files -----------------------------------------------------------------------------------------------


def write_json(report: Report, out: Path, stamp: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report.as_dict(), indent=2, default=str)
    path = out / f"{stamp}.json"
    path.write_text(text)
    (out / "latest.json").write_text(text)
    (out / "latest.md").write_text(render_markdown(report))
    return path


def write_chart(report: Report, path: Path) -> None:
    """Jobs (seconds, log scale) against the floor and the naive baseline; ingestion rates against
    their targets and COPY."""
    chart = Chart(figsize=(15, 7.5), layout="constrained")
    jobs_axis, ingest_axis = chart.subplots(1, 2, width_ratios=(3, 2))
    jobs = [figure for figure in report.figures if figure.group == "jobs"]
    rates = [figure for figure in report.figures if figure.group == "ingestion"]
    for axis, figures, draw in ((jobs_axis, jobs, _draw_jobs), (ingest_axis, rates, _draw_ingestion)):
        if figures:
            draw(report, axis, figures)
        else:
            # A log axis with nothing on it cannot be drawn (--parts left this group out).
            axis.set_axis_off()
            axis.text(0.5, 0.5, "not measured in this run", ha="center", transform=axis.transAxes)
    chart.suptitle(
        f"{report.meta['started_at']} - {report.machine['database_version']} - "
        f"{report.machine['cores']} cores - {report.dataset['spend_rows']:,} spend rows"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    chart.savefig(path, dpi=100)


def _draw_jobs(report: Report, axis: Axes, jobs: list[Figure]) -> None:
    positions = list(range(len(jobs)))
    axis.barh([p + 0.2 for p in positions], [f.value for f in jobs], height=0.4, label="job (median)")
    naive_scaled = [
        (f.naive_value * report.dataset["campaigns"] / f.naive_size) if f.naive_value and f.naive_size else 0
        for f in jobs
    ]
    axis.barh(
        [p - 0.2 for p in positions], naive_scaled, height=0.4, label="naive baseline (per campaign, scaled)"
    )
    floor = report.figure("floor")
    if floor is not None:
        axis.axvline(floor.value, color="black", linestyle="--", label="floor: bare UPDATE")
        axis.axvline(3 * floor.value, color="red", linestyle=":", label="target: 3x floor")
    axis.set_yticks(positions, [figure.label for figure in jobs], fontsize=8)
    axis.invert_yaxis()
    axis.set_xscale("log")
    axis.set_xlabel("seconds (log scale)")
    axis.set_title(f"Jobs at {report.dataset['campaigns']:,} campaigns")
    axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=2)


def _draw_ingestion(report: Report, axis: Axes, rates: list[Figure]) -> None:
    positions = list(range(len(rates)))
    axis.barh(positions, [f.value for f in rates], color="tab:green")
    copy_floor = report.figure("ingest:copy")
    if copy_floor is not None:
        axis.axvline(copy_floor.value, color="black", linestyle="--", label="COPY")
    axis.axvline(1_000, color="red", linestyle=":", label="target: 1,000 record_spend/s")
    axis.axvline(50_000, color="purple", linestyle=":", label="target: 50,000 records/s (batch)")
    axis.set_yticks(positions, [f.label for f in rates], fontsize=8)
    axis.invert_yaxis()
    axis.set_xscale("log")
    axis.set_xlabel("records per second (log scale)")
    axis.set_title("Ingestion")
    axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=2)

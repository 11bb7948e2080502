"""Smoke test of the benchmark: `python -m bench` at a tiny size runs every step and reports every
figure and target, in the table, the JSON and the chart. No timing is asserted.

It runs on the database of the test run: PostgreSQL's test database (disposable, made by
pytest-django) or, on SQLite, a fresh file (the in-memory test database cannot be shared with the
benchmark's subprocesses).
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

PROJECT_DIR = Path(__file__).resolve().parent.parent
JOBS = ("reset_daily_budgets", "reset_monthly_budgets", "enforce_dayparting", "check_campaign_budgets")
FIGURES = {
    "load:budget_campaign",
    "load:budget_spend",
    "load:first_check",
    "floor",
    *(f"job:{job}:{mode}" for job in JOBS for mode in ("work", "steady")),
    "admin:campaign_list",
    "ingest:copy",
    "ingest:record_spend:1",
    "ingest:record_spend:2",
    "ingest:record_spend:2-same-brand",
    "ingest:api:100",
    "ingest:api:10000",
    "ingest:function:10000",
}
TARGETS = (
    *(f"{job} <= 3x floor" for job in JOBS),
    *(f"{job} process peak RSS" for job in JOBS),
    *(f"{job} >= 100x faster than naive" for job in JOBS),
    "check_campaign_budgets <= 10 s",
    "record_spend >= 1,000 calls/s",
    "batch API >= 50,000 records/s",
    "admin campaign list < 300 ms",
)


def benchmark_database_url(tmp_path: Path) -> str:
    if connection.vendor != "postgresql":
        return f"sqlite:///{tmp_path / 'bench.sqlite3'}"
    settings = connection.settings_dict
    password = f":{quote(settings['PASSWORD'])}" if settings["PASSWORD"] else ""
    return (
        f"postgres://{quote(settings['USER'])}{password}@{settings['HOST']}:{settings['PORT'] or 5432}"
        f"/{settings['NAME']}"
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_benchmark_reports_every_figure_and_target(tmp_path: Path) -> None:
    # given a tiny data set on a disposable database
    out = tmp_path / "results"
    command = [
        *(sys.executable, "-m", "bench", "--campaigns", "300", "--runs", "2", "--naive-runs", "1"),
        *("--ingest-seconds", "0.5", "--explain", "--out", str(out)),
        *("--database-url", benchmark_database_url(tmp_path)),
    ]

    # when the whole benchmark runs
    completed = subprocess.run(  # noqa: S603 -- our own interpreter and module
        command,
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
        env=os.environ.copy(),
        timeout=600,
        check=False,
    )

    # then it succeeds and every figure is in the JSON, measured, and printed in the table
    assert completed.returncode == 0, completed.stderr[-5000:]
    report = json.loads((out / "latest.json").read_text())
    figures = {figure["key"]: figure for figure in report["figures"]}
    assert set(figures) >= FIGURES, FIGURES - set(figures)
    for figure in figures.values():
        assert figure["value"] > 0, figure
        assert figure["label"] in completed.stdout
    for job in JOBS:
        work = figures[f"job:{job}:work"]
        assert work["floor_ratio"] > 0
        assert work["naive_speedup"] > 0
        assert work["naive_size"] == 300
        assert work["rss_mb"] > 0
    assert figures["ingest:api:10000"]["naive_speedup"] > 0
    assert not figures["admin:campaign_list"]["detail"].startswith("0 queries")

    # and every target of the issue has a verdict, in the JSON and in the table
    verdicts = {target["text"]: target["verdict"] for target in report["targets"]}
    for target in TARGETS:
        matching = [text for text in verdicts if text.startswith(target)]
        assert len(matching) == 1, (target, list(verdicts))
        assert verdicts[matching[0]] in {"PASS", "MISS", "n/a"}
        assert matching[0] in completed.stdout
    assert report["dataset"]["campaigns"] == 300
    assert report["dataset"]["brands"] == 30
    assert report["machine"]["cores"] >= 1

    # and the chart is a PNG, the Markdown has both tables; on PostgreSQL each job's statements
    # are explained
    assert (out / "latest.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    markdown = (out / "latest.md").read_text()
    assert "| Figure |" in markdown
    assert "| Target |" in markdown
    if connection.vendor == "postgresql":
        plans = (out / "explain" / "check_campaign_budgets-work.txt").read_text()
        assert "actual time=" in plans


def test_benchmark_refuses_a_database_it_should_not_empty() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--campaigns", "10", "--database-url", "postgres://u@h/budget"],
        capture_output=True,
        text=True,
        cwd=PROJECT_DIR,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 2
    assert "refusing to run on database 'budget'" in completed.stderr

"""Timing and memory: the median of several runs, each from the same prepared state, and a job's
memory measured in a fresh process (`bench.probe`)."""

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from typing import Any


@dataclass(frozen=True, slots=True)
class Timing:
    """Wall-clock seconds of each run; `detail` says what the last run did."""

    seconds: tuple[float, ...]
    detail: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def runs(self) -> int:
        return len(self.seconds)

    def as_dict(self) -> dict[str, Any]:
        return {"median_s": self.median, "runs_s": list(self.seconds), "detail": self.detail}


def time_runs(
    runs: int,
    action: Callable[[], object],
    *,
    prepare: Callable[[], object] = lambda: None,
    describe: Callable[[object], str] = lambda result: "",
) -> Timing:
    """Run `prepare` (not timed) then `action` (timed), `runs` times."""
    samples: list[float] = []
    result: object = None
    for _ in range(runs):
        prepare()
        started = perf_counter()
        result = action()
        samples.append(perf_counter() - started)
    return Timing(tuple(samples), describe(result))


@dataclass(frozen=True, slots=True)
class Memory:
    """Max RSS of a fresh process before (set up, connected, idle) and after running one job."""

    idle_kb: int
    peak_kb: int
    seconds: float

    @property
    def peak_mb(self) -> float:
        return self.peak_kb / 1024

    @property
    def added_mb(self) -> float:
        return (self.peak_kb - self.idle_kb) / 1024

    def as_dict(self) -> dict[str, Any]:
        return {
            "idle_rss_mb": self.idle_kb / 1024,
            "peak_rss_mb": self.peak_mb,
            "added_by_job_mb": self.added_mb,
            "seconds": self.seconds,
        }


def memory_of(job: str) -> Memory:
    """Run the task function `job` in `python -m bench.probe` (same environment) and read its RSS."""
    completed = subprocess.run(  # noqa: S603 -- our own interpreter and module, fixed arguments
        [sys.executable, "-m", "bench.probe", job],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"bench.probe {job} failed ({completed.returncode}):\n{completed.stderr}")
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    return Memory(int(report["idle_rss_kb"]), int(report["peak_rss_kb"]), float(report["seconds"]))

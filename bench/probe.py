"""`python -m bench.probe JOB`: run one job in a fresh process and report its memory high-water mark.

The parent (`bench.measure.memory_of`) prepares the work and starts this with its environment.
The process sets Django up, imports the tasks and connects first; the max RSS at that point is the
same process doing nothing, and the max RSS after the job is the job's peak. Both are printed as
one JSON line. RSS (`getrusage` ru_maxrss, kilobytes on Linux) is what the operating system gives
the worker process: it includes the interpreter, Django and every row the job fetched into Python.
"""

import json
import os
import resource
import sys
from time import perf_counter

import django
from django.db import connection


def max_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bench.probe JOB (a function name of apps.budget.tasks)", file=sys.stderr)
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "budget_system.settings")
    django.setup()
    # Imported only now: the tasks import the models, which need Django set up.
    from apps.budget import tasks  # noqa: PLC0415

    job = getattr(tasks, argv[0])
    connection.ensure_connection()
    idle_kb = max_rss_kb()
    started = perf_counter()
    summary = job()
    seconds = perf_counter() - started
    print(
        json.dumps(
            {
                "job": argv[0],
                "idle_rss_kb": idle_kb,
                "peak_rss_kb": max_rss_kb(),
                "seconds": seconds,
                "summary": summary,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

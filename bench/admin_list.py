"""The admin's campaign list (GET /admin/budget/campaign/) as a logged-in superuser sees it: the
whole view, template included, through Django's test client (no network, no static files)."""

from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bench.measure import Timing, time_runs

URL = "/admin/budget/campaign/"
USERNAME = "bench-admin"


def admin_list_timing(runs: int) -> Timing:
    user_model = get_user_model()
    user_model.objects.filter(username=USERNAME).delete()
    user = user_model.objects.create_superuser(username=USERNAME, email="", password=None)
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)

    def get() -> int:
        response = client.get(URL)
        if response.status_code != 200:
            raise RuntimeError(f"GET {URL} answered {response.status_code}")
        return len(response.content)

    # The first request compiles templates and warms caches; the second counts the queries.
    get()
    with CaptureQueriesContext(connection) as captured:
        size = get()
    # Counted now: the next requests clear the connection's query log (request_started).
    queries = len(captured)
    timing = time_runs(runs, get)
    return Timing(timing.seconds, f"{queries} queries, {size // 1024} KB of HTML")

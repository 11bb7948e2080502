"""Settings come from the environment: production values are checked, local defaults are safe."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from budget_system.settings import database_from_url

PROJECT_DIR = Path(__file__).resolve().parents[2]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS"}}
    return subprocess.run(  # noqa: S603  # our own manage.py with fixed arguments
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_deploy_check_is_clean_with_production_variables() -> None:
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY="x7" * 30 + "-production-only-from-the-environment",
        ALLOWED_HOSTS="budgets.example.com",
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.slow
def test_production_refuses_the_local_secret_key() -> None:
    result = manage("check", DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is false" in result.stderr


@pytest.mark.unit
def test_sqlite_is_configured_for_concurrent_writers() -> None:
    config = database_from_url("sqlite:////tmp/budget.sqlite3")
    assert config["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in config["OPTIONS"]["init_command"]
    assert config["OPTIONS"]["timeout"] >= 5


@pytest.mark.unit
def test_postgresql_comes_from_database_url() -> None:
    config = database_from_url("postgres://ops:secret@db.internal:5433/budgets")
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"], config["USER"]) == (
        "db.internal",
        5433,
        "budgets",
        "ops",
    )

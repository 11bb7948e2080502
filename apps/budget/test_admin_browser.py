"""The admin in a real headless Chromium, as an ops person uses it.

Debian's chromium (/usr/bin/chromium) driven by Playwright for Python through `executable_path`;
`bin/install-browser` installs both (never `playwright install`, which downloads a browser of its
own). A missing browser FAILS these tests with that instruction: CI installs it, so a skip would
only hide a broken setup. Screenshots of the campaign list and page go to test-artifacts/.

Playwright's sync API keeps an asyncio loop running in this (the main) thread, and Django refuses
ORM calls from a thread with a running loop (SynchronousOnlyOperation). The ORM calls made here
(test data, the transactional flush) are plain synchronous code, so the browser fixture sets
DJANGO_ALLOW_ASYNC_UNSAFE for this module only, while the browser is up (a known need, see
microsoft/playwright-pytest#29). The live server answers the browser from its own thread.
"""

import importlib
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from django.apps import apps as django_apps
from django.conf import settings
from django.contrib.auth.models import Group, User
from pytest_django.live_server_helper import LiveServer

from apps.budget import services
from apps.budget.choices import CampaignStatus, PauseReason
from apps.budget.clock import month_start, utc_today
from apps.budget.conftest import BrandFactory, CampaignFactory
from apps.budget.models import Campaign, CampaignStatusChange

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"
PASSWORD = "browser-test-password-9"  # noqa: S105 (a test user's)
INSTALL_HINT = "run bin/install-browser (Debian's chromium and the pinned playwright package)"


@pytest.fixture(scope="module")
def browser() -> Iterator["Browser"]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is not installed: {INSTALL_HINT}")
    try:
        # Imported here so that a missing package fails with the instruction, not an ImportError.
        from playwright.sync_api import sync_playwright  # noqa: PLC0415
    except ImportError:
        pytest.fail(f"the playwright package is not installed: {INSTALL_HINT}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield launched
            launched.close()


@pytest.fixture
def page(browser: "Browser", live_server: LiveServer) -> Iterator["Page"]:
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1600, "height": 1000})
    context.set_default_timeout(15_000)
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture
def ops_user(transactional_db: None) -> User:
    """A staff member of the "Ops" group, as the roles migration defines it.

    The transactional tests flush the database between tests, groups included, so the group is
    made again with the migration's own function.
    """
    roles = importlib.import_module("apps.budget.migrations.0003_ops_and_viewer_groups")
    roles.create_roles(django_apps, None)
    user = User.objects.create_user("olga", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name="Ops"))
    return user


def log_in(page: "Page", user: User) -> None:
    page.goto("/admin/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    assert "Log in" not in page.title(), page.content()[:2000]


def screenshot(page: "Page", name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def campaign_row(page: "Page", name: str) -> str:
    return page.locator("#result_list tbody tr", has_text=name).inner_text()


def make_campaign(name: str, **fields: object) -> Campaign:
    brand = BrandFactory.create(name="Acme")
    return CampaignFactory.create(brand=brand, name=name, start_date=month_start(utc_today()), **fields)


def test_ops_pauses_a_campaign_with_the_action_and_sees_badge_and_audit(page: "Page", ops_user: User) -> None:
    campaign = make_campaign("Summer sale")
    make_campaign("Winter sale")
    # Some spend today and on earlier days, for the charts in the screenshot.
    for days_ago in range(6):
        services.record_spend(campaign, Decimal(12 + 3 * days_ago), utc_today() - timedelta(days=days_ago), 0)
    log_in(page, ops_user)

    page.goto("/admin/budget/campaign/")
    assert "Active" in campaign_row(page, "Summer sale")
    page.locator("#result_list tbody tr", has_text="Summer sale").locator("input.action-select").check()
    page.select_option("select[name=action]", "pause_selected")
    with page.expect_navigation():
        page.click("button[name=index]")

    assert "Paused 1 campaign." in page.locator("ul.messagelist").inner_text()
    row = campaign_row(page, "Summer sale")
    assert "Paused" in row
    assert "Paused by a person" in row
    assert (
        page.locator("#result_list tbody tr", has_text="Summer sale").locator(".status-paused").count() == 1
    )
    assert "Paused by a person" not in campaign_row(page, "Winter sale")
    screenshot(page, "campaign-list.png")

    page.click("#result_list a:text-is('Summer sale')")
    history = page.locator("#status-history").inner_text()
    assert "user:olga" in history
    assert "Paused by a person" in history
    assert "12.00" in page.locator("#spend-today").inner_text()  # today's total
    assert page.locator("#spend-days svg.spend-chart rect").count() == 30
    screenshot(page, "campaign-page.png")
    audit = CampaignStatusChange.objects.get(campaign=campaign)
    assert (audit.new_status, audit.reason, audit.actor) == ("PAUSED", "MANUAL", "user:olga")


def test_raising_the_budget_in_the_form_resumes_the_campaign(page: "Page", ops_user: User) -> None:
    campaign = make_campaign("Spring sale")
    services.record_spend(campaign, Decimal("100.00"), utc_today(), 0)
    campaign.refresh_from_db()
    assert campaign.pause_reason == PauseReason.DAILY_BUDGET
    log_in(page, ops_user)

    page.goto(f"/admin/budget/campaign/{campaign.pk}/change/")
    assert "Daily budget reached" in page.locator(".field-status_display").inner_text()
    page.fill("#id_daily_budget", "150.00")
    with page.expect_navigation():
        page.click("input[name=_save]")

    assert "Status: PAUSED -> ACTIVE" in page.locator("ul.messagelist").inner_text()
    row = campaign_row(page, "Spring sale")
    assert "Active" in row
    assert "66%" in row  # 100.00 of the new 150.00
    campaign.refresh_from_db()
    assert (campaign.status, campaign.daily_budget) == (CampaignStatus.ACTIVE, Decimal("150.00"))


def test_a_bad_dayparting_window_shows_the_error_and_a_good_one_saves(page: "Page", ops_user: User) -> None:
    campaign = make_campaign("Autumn sale")
    log_in(page, ops_user)

    page.goto(f"/admin/budget/campaign/{campaign.pk}/change/")
    page.click("#dayparting-group .add-row a")
    page.select_option("#id_dayparting-0-day_of_week", "0")
    page.fill("#id_dayparting-0-start_hour", "17")
    page.fill("#id_dayparting-0-end_hour", "9")
    with page.expect_navigation():
        page.click("input[name=_save]")

    assert "end_hour 9 must be after start_hour 17" in page.locator("#dayparting-group").inner_text()
    assert not campaign.dayparting.exists()

    page.fill("#id_dayparting-0-start_hour", "9")
    page.fill("#id_dayparting-0-end_hour", "17")
    with page.expect_navigation():
        page.click("input[name=_save]")

    assert "was changed successfully" in page.locator("ul.messagelist").inner_text()
    assert "Mon 09–17" in campaign_row(page, "Autumn sale")
    assert list(campaign.dayparting.values_list("day_of_week", "start_hour", "end_hour")) == [(0, 9, 17)]


def test_the_brand_filter_finds_a_brand_by_typing(page: "Page", ops_user: User) -> None:
    make_campaign("Acme launch")
    other = BrandFactory.create(name="Globex")
    CampaignFactory.create(brand=other, name="Globex launch")
    log_in(page, ops_user)

    page.goto("/admin/budget/campaign/")
    page.click("details[data-filter-title=brand] .select2-selection")
    page.fill(".select2-search__field", "glob")
    with page.expect_navigation():
        page.click(".select2-results__option:has-text('Globex')")

    assert f"brand={other.pk}" in page.url
    names = page.locator("#result_list tbody th a").all_inner_texts()
    assert names == ["Globex launch"]

"""The admin as ops staff use it: lists, filters, actions, edits, dayparting, charts, roles, scale.

Pages are driven through Django's test client as a logged-in person would drive them; the
browser tests (test_admin_browser.py) repeat the main tasks in a real Chromium.
"""

from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission, User
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.budget import admin as budget_admin
from apps.budget import services
from apps.budget.admin_display import ChartBar, bar_chart, budget_bar, dayparting_summary, percent_used
from apps.budget.choices import CampaignStatus, PauseReason
from apps.budget.clock import utc_today
from apps.budget.conftest import (
    BrandFactory,
    CampaignFactory,
    DaypartingScheduleFactory,
    SpendFactory,
    is_postgresql,
)
from apps.budget.models import Brand, Campaign, CampaignStatusChange, DaypartingSchedule, Spend
from apps.budget.selectors import spend_by_day, spend_by_hour

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as Response

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-test-password-7"  # noqa: S105 (test users only)


# --- Helpers and fixtures ------------------------------------------------------------------------


def url(name: str, *args: object) -> str:
    return reverse(f"admin:budget_{name}", args=args)


def texts(response: "Response") -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def staff(username: str, group: str) -> User:
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def ops_client(db: None) -> Client:
    return logged_in(staff("ops", "Ops"))


@pytest.fixture
def viewer_client(db: None) -> Client:
    return logged_in(staff("viewer", "Viewer"))


def campaign_form(
    campaign: Campaign, windows: list[dict[str, object]] | None = None, **changes: object
) -> dict[str, object]:
    """The POST of the campaign change form as the page sends it, with `changes` applied."""
    if windows is None:
        windows = [
            {"id": w.pk, "day_of_week": w.day_of_week, "start_hour": w.start_hour, "end_hour": w.end_hour}
            for w in campaign.dayparting.order_by("pk")
        ]
    rows = windows
    data: dict[str, object] = {
        "brand": campaign.brand_id,
        "name": campaign.name,
        "start_date": campaign.start_date.isoformat(),
        "end_date": campaign.end_date.isoformat() if campaign.end_date else "",
        "daily_budget": str(campaign.daily_budget),
        "monthly_budget": str(campaign.monthly_budget),
        "dayparting-TOTAL_FORMS": len(rows),
        "dayparting-INITIAL_FORMS": sum(1 for row in rows if row.get("id")),
        "dayparting-MIN_NUM_FORMS": 0,
        "dayparting-MAX_NUM_FORMS": 1000,
        "_save": "Save",
    }
    for index, row in enumerate(rows):
        for key, value in row.items():
            if key == "DELETE":
                if value:
                    data[f"dayparting-{index}-DELETE"] = "on"
                continue
            data[f"dayparting-{index}-{key}"] = "" if value is None else value
        data[f"dayparting-{index}-campaign"] = campaign.pk if campaign.pk else ""
    data.update(changes)
    return data


def brand_form(brand: Brand, **changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": brand.name,
        "daily_budget": str(brand.daily_budget),
        "monthly_budget": str(brand.monthly_budget),
        "_save": "Save",
    }
    if brand.is_active:
        data["is_active"] = "on"
    data.update(changes)
    return data


def run_action(client: Client, action: str, campaigns: list[Campaign]) -> "Response":
    return client.post(
        url("campaign_changelist"),
        {"action": action, "_selected_action": [c.pk for c in campaigns], "index": 0},
        follow=True,
    )


def reload(campaign: Campaign) -> Campaign:
    campaign.refresh_from_db()
    return campaign


def spend(campaign: Campaign, amount: str, hour: int = 0, day: Any = None) -> None:
    services.record_spend(campaign, Decimal(amount), day or utc_today(), hour)


# --- Registration and list display ---------------------------------------------------------------


def test_every_budget_model_is_registered() -> None:
    for model in (Brand, Campaign, Spend, DaypartingSchedule, CampaignStatusChange):
        assert admin.site.is_registered(model), model


def test_campaign_list_shows_spend_against_budget_red_once_reached(
    admin_client: Client, brand: Brand
) -> None:
    reached = CampaignFactory.create(brand=brand, name="Reached")
    spend(reached, "100.00")
    nearly = CampaignFactory.create(brand=brand, name="Nearly")
    spend(nearly, "99.99")

    page = admin_client.get(url("campaign_changelist")).content.decode()

    reached_row = row_of(page, "Reached")
    assert "budget-over" in reached_row
    assert "100%" in reached_row
    assert "100.00 / 100.00" in reached_row
    nearly_row = row_of(page, "Nearly")
    # Rounded down: 100% is only shown once the budget is really reached.
    assert "99%" in nearly_row
    assert "budget-warn" in nearly_row
    assert "budget-over" not in nearly_row.split("Monthly")[0]


def row_of(page: str, name: str) -> str:
    """The HTML of the list row whose name link reads `name`."""
    start = page.index(f">{name}</a>")
    return page[page.rindex("<tr", 0, start) : page.index("</tr>", start)]


def test_campaign_list_counts_a_stale_aggregate_as_zero_like_the_rule(
    admin_client: Client, campaign: Campaign
) -> None:
    # given yesterday's 80.00 still in the aggregate (the midnight reset has not run yet)
    Campaign.objects.filter(pk=campaign.pk).update(
        daily_spend=Decimal("80.00"), daily_spend_day=utc_today() - timedelta(days=1)
    )
    # then the bar shows what the rule counts today: nothing
    row = row_of(admin_client.get(url("campaign_changelist")).content.decode(), campaign.name)
    assert "0.00 / 100.00" in row
    assert "80.00" not in row


def test_campaign_list_shows_status_badge_reason_brand_dates_and_dayparting(
    admin_client: Client, paused_campaign: Campaign, campaign_with_dayparting: Campaign
) -> None:
    page = admin_client.get(url("campaign_changelist")).content.decode()

    paused_row = row_of(page, paused_campaign.name)
    assert 'class="status-badge status-paused"' in paused_row
    assert "Paused by a person" in paused_row
    assert paused_campaign.brand.name in paused_row
    assert f"{paused_campaign.start_date.isoformat()} → open end" in paused_row
    assert "Any time" in paused_row
    assert "Mon–Fri 09–17" in row_of(page, campaign_with_dayparting.name)


def test_brand_list_filters_active_brands(admin_client: Client) -> None:
    BrandFactory.create(name="Open")
    BrandFactory.create(name="Closed", is_active=False)
    inactive = admin_client.get(url("brand_changelist") + "?active=no")
    assert [b.name for b in inactive.context["cl"].result_list] == ["Closed"]
    active = admin_client.get(url("brand_changelist") + "?active=yes&q=o")
    assert [b.name for b in active.context["cl"].result_list] == ["Open"]


def test_brand_list_shows_its_spend_against_budget(admin_client: Client, campaign: Campaign) -> None:
    spend(campaign, "50.00")
    row = row_of(admin_client.get(url("brand_changelist")).content.decode(), campaign.brand.name)
    assert "50.00 / 5,000.00" in row
    assert "1%" in row
    assert f"?brand={campaign.brand_id}" in row


@pytest.mark.parametrize(
    ("windows", "summary"),
    [
        ([], "Any time"),
        ([(d, 9, 17) for d in range(5)], "Mon–Fri 09–17"),
        ([(d, 9, 17) for d in range(7)], "Mon–Sun 09–17"),
        ([(0, 9, 12), (0, 13, 17), (1, 13, 17), (1, 9, 12)], "Mon–Tue 09–12 & 13–17"),
        ([(0, 9, 17), (2, 9, 17), (5, 0, 24)], "Mon 09–17, Wed 09–17, Sat 00–24"),
        ([(0, 9, 17), (1, 9, 17), (2, 10, 17), (3, 9, 17)], "Mon–Tue 09–17, Wed 10–17, Thu 09–17"),
    ],
)
@pytest.mark.unit
def test_dayparting_summary_collapses_consecutive_identical_days(
    windows: list[tuple[int, int, int]], summary: str
) -> None:
    assert dayparting_summary(windows) == summary


@pytest.mark.unit
def test_percent_rounds_down_and_a_zero_budget_is_full() -> None:
    assert percent_used(Decimal("99.99"), Decimal("100.00")) == 99
    assert percent_used(Decimal("100.00"), Decimal("100.00")) == 100
    assert percent_used(Decimal("250.00"), Decimal("100.00")) == 250
    assert percent_used(Decimal("0.00"), Decimal("0.00")) == 100
    assert "budget-over" in budget_bar(Decimal("0.00"), Decimal("0.00"))
    # The fill never draws past the bar, however far over the budget the spend is.
    assert "width: 100%" in budget_bar(Decimal("250.00"), Decimal("100.00"))


@pytest.mark.unit
def test_bar_chart_draws_one_bar_per_value_and_the_budget_line() -> None:
    svg = bar_chart(
        [ChartBar("00", "hour 0", Decimal("0.00")), ChartBar("", "hour 1", Decimal("40.00"))],
        title="Spend <today>",
        limit=Decimal("80.00"),
        limit_label="daily budget",
    )
    assert svg.count("<rect") == 2
    assert "<title>hour 1: 40.00</title>" in svg
    assert 'class="chart-limit"' in svg
    assert "daily budget 80.00" in svg
    assert "Spend &lt;today&gt;" in svg  # escaped
    assert "No spend in this period" not in svg
    assert "No spend in this period" in bar_chart([ChartBar("", "x", Decimal("0.00"))], title="t")
    # 40.00 of a scale topped by the 80.00 budget: half of the 180-unit plot height.
    assert 'height="90.0"' in svg


# --- Filters, search, autocomplete ---------------------------------------------------------------


def listed(client: Client, query: str = "") -> set[str]:
    response = client.get(url("campaign_changelist") + query)
    assert response.status_code == 200
    return {str(obj) for obj in response.context["cl"].result_list}


def test_campaign_filters_by_status_reason_brand_and_brand_activity(admin_client: Client) -> None:
    acme = BrandFactory.create(name="Acme")
    dormant = BrandFactory.create(name="Dormant")
    running = CampaignFactory.create(brand=acme, name="Running")
    by_hand = CampaignFactory.create(brand=acme, name="By hand")
    services.pause_campaign(by_hand)
    over = CampaignFactory.create(brand=acme, name="Over", daily_budget=Decimal("0.00"))
    services.reevaluate_campaigns([over.pk], actor="test")
    asleep = CampaignFactory.create(brand=dormant, name="Asleep")
    dormant.is_active = False
    services.save_brand(dormant)

    assert listed(admin_client, "?status__exact=ACTIVE") == {running.name}
    assert listed(admin_client, "?pause_reason=MANUAL") == {by_hand.name}
    assert listed(admin_client, "?pause_reason=DAILY_BUDGET") == {over.name}
    assert listed(admin_client, f"?brand={dormant.pk}") == {asleep.name}
    assert listed(admin_client, "?brand_active=no") == {asleep.name}
    assert listed(admin_client, "?brand_active=yes") == {running.name, by_hand.name, over.name}
    assert listed(admin_client, "?q=hand") == {by_hand.name}


def test_spend_search_finds_the_record_with_exactly_that_external_id(
    admin_client: Client, campaign: Campaign
) -> None:
    for key in ("order-17", "ORDER-17", "order-170"):
        SpendFactory.create(campaign=campaign, external_id=key)

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(url("spend_changelist") + "?q=order-17")

    assert response.status_code == 200
    assert [spend.external_id for spend in response.context["cl"].result_list] == ["order-17"]
    # An equality the unique index answers, not UPPER(external_id), which scans every row.
    searches = [query["sql"] for query in queries.captured_queries if "order-17" in query["sql"]]
    assert searches
    assert all("UPPER" not in sql for sql in searches)


def test_a_brand_filter_that_is_not_an_id_is_refused_not_crashed(admin_client: Client) -> None:
    response = admin_client.get(url("campaign_changelist") + "?brand=abc")
    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")


def test_brand_filter_shows_the_selected_brand_in_its_autocomplete_box(
    admin_client: Client, campaign: Campaign
) -> None:
    page = admin_client.get(url("campaign_changelist") + f"?brand={campaign.brand_id}").content.decode()
    assert 'id="brand-filter"' in page
    assert f'<option value="{campaign.brand_id}" selected>{campaign.brand.name}</option>' in page
    # select2 and its styles come from Django's own static files, never a CDN.
    assert "admin/js/vendor/select2/select2.full" in page
    assert "//cdn" not in page


def test_brand_autocomplete_finds_brands_by_name(admin_client: Client) -> None:
    acme = BrandFactory.create(name="Acme Corp")
    BrandFactory.create(name="Globex")
    response = admin_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "budget", "model_name": "campaign", "field_name": "brand", "term": "acme"},
    )
    assert response.status_code == 200
    assert [r["text"] for r in response.json()["results"]] == [acme.name]


def test_campaign_form_picks_the_brand_with_autocomplete(admin_client: Client, campaign: Campaign) -> None:
    page = admin_client.get(url("campaign_change", campaign.pk)).content.decode()
    brand_select = page[page.index('name="brand"') - 600 : page.index('name="brand"') + 600]
    assert 'data-field-name="brand"' in brand_select
    assert "admin-autocomplete" in brand_select


# --- Actions ------------------------------------------------------------------------------------


def test_pause_action_pauses_by_hand_and_says_why_others_did_not_change(
    frozen_now: datetime, ops_client: Client, brand: Brand
) -> None:
    running = CampaignFactory.create(brand=brand, name="Running")
    over_budget = CampaignFactory.create(brand=brand, name="Over budget", daily_budget=Decimal("0.00"))
    services.reevaluate_campaigns([over_budget.pk], actor="test")
    by_hand = CampaignFactory.create(brand=brand, name="By hand")
    services.pause_campaign(by_hand)
    ended = CampaignFactory.create(
        brand=brand,
        name="Ended",
        start_date=utc_today() - timedelta(days=10),
        end_date=utc_today() - timedelta(days=1),
    )
    services.reevaluate_campaigns([ended.pk], actor="test")
    assert reload(ended).status == CampaignStatus.COMPLETED

    response = run_action(ops_client, "pause_selected", [running, over_budget, by_hand, ended])

    messages = texts(response)
    assert "Paused 2 campaigns." in messages
    assert "1 was already paused by a person." in messages
    assert any("'Ended' is COMPLETED and cannot be paused" in m for m in messages)
    for paused in (running, over_budget, by_hand):
        assert (reload(paused).status, paused.pause_reason) == (CampaignStatus.PAUSED, PauseReason.MANUAL)
    assert reload(ended).status == CampaignStatus.COMPLETED
    audit = CampaignStatusChange.objects.get(campaign=running)
    assert (audit.new_status, audit.reason, audit.actor) == ("PAUSED", "MANUAL", "user:ops")


def test_resume_action_applies_the_rule_and_reports_who_stays_paused(
    ops_client: Client, brand: Brand
) -> None:
    fine = CampaignFactory.create(brand=brand, name="Fine")
    services.pause_campaign(fine)
    spent = CampaignFactory.create(brand=brand, name="Spent")
    spend(spent, "100.00")
    services.pause_campaign(spent)
    running = CampaignFactory.create(brand=brand, name="Running")

    response = run_action(ops_client, "resume_selected", [fine, spent, running])

    messages = texts(response)
    assert "Resumed 1 campaign." in messages
    assert "1 was already active." in messages
    assert "1 stays PAUSED: Daily budget reached." in messages
    assert reload(fine).status == CampaignStatus.ACTIVE
    assert (reload(spent).status, spent.pause_reason) == (CampaignStatus.PAUSED, PauseReason.DAILY_BUDGET)


def test_resume_action_shows_the_services_refusal_for_an_ended_campaign(
    admin_client: Client, brand: Brand
) -> None:
    ended = CampaignFactory.create(
        brand=brand,
        name="Ended",
        start_date=utc_today() - timedelta(days=10),
        end_date=utc_today() - timedelta(days=1),
    )
    services.reevaluate_campaigns([ended.pk], actor="test")

    messages = texts(run_action(admin_client, "resume_selected", [ended]))

    assert any("'Ended' ended on" in m and "extend end_date before resuming it" in m for m in messages)
    assert reload(ended).status == CampaignStatus.COMPLETED


def test_reevaluate_action_applies_the_rule_now_and_reports_the_changes(
    admin_client: Client, brand: Brand
) -> None:
    # given aggregates over budget that the rule has not looked at yet (as after a drift repair)
    stale = CampaignFactory.create(brand=brand, name="Stale")
    Campaign.objects.filter(pk=stale.pk).update(daily_spend=Decimal("150.00"), daily_spend_day=utc_today())
    untouched = CampaignFactory.create(brand=brand, name="Untouched")

    messages = texts(run_action(admin_client, "reevaluate_selected", [stale, untouched]))

    assert "Re-evaluated 2 campaigns: 1 changed, 1 unchanged." in messages
    assert "1 campaign: ACTIVE -> PAUSED (Daily budget reached)" in messages
    assert (reload(stale).status, stale.pause_reason) == (CampaignStatus.PAUSED, PauseReason.DAILY_BUDGET)
    assert CampaignStatusChange.objects.get(campaign=stale).actor == "user:admin"


def test_many_refusals_are_counted_after_the_first_ten(admin_client: Client, brand: Brand) -> None:
    yesterday = utc_today() - timedelta(days=1)
    ended = [CampaignFactory.create(brand=brand, start_date=yesterday, end_date=yesterday) for _ in range(12)]
    services.reevaluate_campaigns([c.pk for c in ended], actor="test")

    messages = texts(run_action(admin_client, "pause_selected", ended))

    assert sum("cannot be paused" in m for m in messages) == 10
    assert "… and 2 more refused." in messages


def test_reevaluate_action_works_through_a_large_selection_in_batches(
    admin_client: Client, brand: Brand, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(budget_admin, "ACTION_BATCH", 2)
    campaigns = CampaignFactory.create_batch(5, brand=brand)
    Campaign.objects.update(daily_spend=Decimal("150.00"), daily_spend_day=utc_today())

    messages = texts(run_action(admin_client, "reevaluate_selected", campaigns))

    assert "Re-evaluated 5 campaigns: 5 changed, 0 unchanged." in messages
    assert "5 campaigns: ACTIVE -> PAUSED (Daily budget reached)" in messages
    assert set(Campaign.objects.values_list("pause_reason", flat=True)) == {PauseReason.DAILY_BUDGET}


# --- Editing applies the rule at once ------------------------------------------------------------


def test_raising_a_budget_resumes_a_budget_paused_campaign(
    admin_client: Client, campaign_near_daily_limit: Campaign
) -> None:
    campaign = campaign_near_daily_limit
    spend(campaign, "0.01")
    assert reload(campaign).pause_reason == PauseReason.DAILY_BUDGET

    response = admin_client.post(
        url("campaign_change", campaign.pk), campaign_form(campaign, daily_budget="150.00"), follow=True
    )

    assert "Status: PAUSED -> ACTIVE" in texts(response)
    assert (reload(campaign).status, campaign.daily_budget) == (CampaignStatus.ACTIVE, Decimal("150.00"))
    assert CampaignStatusChange.objects.filter(
        campaign=campaign, actor="user:admin", new_status="ACTIVE"
    ).exists()


def test_lowering_a_budget_under_the_spend_pauses_at_once(admin_client: Client, campaign: Campaign) -> None:
    spend(campaign, "60.00")

    response = admin_client.post(
        url("campaign_change", campaign.pk), campaign_form(campaign, daily_budget="50.00"), follow=True
    )

    assert "Status: ACTIVE -> PAUSED (Daily budget reached)" in texts(response)
    assert (reload(campaign).status, campaign.pause_reason) == (
        CampaignStatus.PAUSED,
        PauseReason.DAILY_BUDGET,
    )


def test_moving_the_start_date_into_the_future_pauses_until_then(
    admin_client: Client, campaign: Campaign
) -> None:
    later = utc_today() + timedelta(days=3)
    admin_client.post(
        url("campaign_change", campaign.pk), campaign_form(campaign, start_date=later.isoformat())
    )
    assert (reload(campaign).status, campaign.pause_reason) == (
        CampaignStatus.PAUSED,
        PauseReason.NOT_STARTED,
    )


def test_derived_fields_are_read_only_and_a_post_cannot_set_them(
    admin_client: Client, campaign: Campaign
) -> None:
    spend(campaign, "60.00")
    page = admin_client.get(url("campaign_change", campaign.pk)).content.decode()
    for derived in ("daily_spend", "monthly_spend", "status", "pause_reason"):
        assert f'name="{derived}"' not in page

    admin_client.post(
        url("campaign_change", campaign.pk),
        campaign_form(campaign, daily_spend="0.00", status="COMPLETED", pause_reason="MANUAL"),
    )

    assert (reload(campaign).daily_spend, campaign.status) == (Decimal("60.00"), CampaignStatus.ACTIVE)


def test_deactivating_a_brand_pauses_all_its_campaigns(
    admin_client: Client, multiple_campaigns: list[Campaign]
) -> None:
    brand = multiple_campaigns[0].brand

    response = admin_client.post(url("brand_change", brand.pk), brand_form(brand, is_active=""), follow=True)

    assert "Status of 5 campaigns: ACTIVE -> PAUSED (Brand is inactive)" in texts(response)
    assert {reload(c).pause_reason for c in multiple_campaigns} == {PauseReason.BRAND_INACTIVE}


def test_raising_a_brand_budget_resumes_its_budget_paused_campaigns(
    admin_client: Client, campaign: Campaign
) -> None:
    brand = campaign.brand
    brand.daily_budget = Decimal("50.00")
    services.save_brand(brand)
    spend(campaign, "50.00")
    assert reload(campaign).pause_reason == PauseReason.BRAND_DAILY_BUDGET

    response = admin_client.post(
        url("brand_change", brand.pk), brand_form(brand, daily_budget="500.00"), follow=True
    )

    assert "Status of 1 campaign: PAUSED -> ACTIVE" in texts(response)
    assert reload(campaign).status == CampaignStatus.ACTIVE
    brand.refresh_from_db()
    assert brand.daily_spend == Decimal("50.00")  # the aggregate was kept, not taken from the form


# --- Dayparting inline ---------------------------------------------------------------------------


def test_adding_dayparting_applies_the_rule_at_once(
    frozen_now: datetime, admin_client: Client, campaign: Campaign
) -> None:
    # Wednesday noon; the only window is Monday morning.
    windows: list[dict[str, object]] = [{"day_of_week": 0, "start_hour": 9, "end_hour": 11}]

    response = admin_client.post(
        url("campaign_change", campaign.pk), campaign_form(campaign, windows), follow=True
    )

    assert "Status: ACTIVE -> PAUSED (Outside its dayparting hours)" in texts(response)
    assert list(campaign.dayparting.values_list("day_of_week", "start_hour", "end_hour")) == [(0, 9, 11)]
    assert reload(campaign).pause_reason == PauseReason.DAYPARTING


def test_adding_a_campaign_with_dayparting_applies_the_rule(
    frozen_now: datetime, admin_client: Client, brand: Brand
) -> None:
    new = Campaign(
        brand=brand, name="New", daily_budget=Decimal(10), monthly_budget=Decimal(100), start_date=utc_today()
    )
    data = campaign_form(new, [{"day_of_week": 2, "start_hour": 14, "end_hour": 18}])

    admin_client.post(url("campaign_add"), data)

    created = Campaign.objects.get(name="New")
    assert (created.status, created.pause_reason) == (CampaignStatus.PAUSED, PauseReason.DAYPARTING)


@pytest.mark.parametrize(
    ("window", "error"),
    [
        ({"day_of_week": 0, "start_hour": 17, "end_hour": 9}, "end_hour 9 must be after start_hour 17"),
        ({"day_of_week": 0, "start_hour": 9, "end_hour": 9}, "end_hour 9 must be after start_hour 9"),
        (
            {"day_of_week": 0, "start_hour": 24, "end_hour": 24},
            "start_hour 24 is out of range: a window starts at hour 0 to 23",
        ),
        (
            {"day_of_week": 0, "start_hour": 9, "end_hour": 25},
            "end_hour 25 is out of range: a window ends at hour 1 to 24",
        ),
        ({"day_of_week": 0, "start_hour": -1, "end_hour": 5}, "start_hour -1 is out of range"),
        (
            {"day_of_week": 7, "start_hour": 9, "end_hour": 17},
            "Select a valid choice. 7 is not one of the available choices.",
        ),
    ],
)
def test_a_bad_dayparting_window_is_refused_with_a_clear_error(
    admin_client: Client, campaign: Campaign, window: dict[str, object], error: str
) -> None:
    response = admin_client.post(
        url("campaign_change", campaign.pk), campaign_form(campaign, [window], daily_budget="1.00")
    )

    assert response.status_code == 200  # the form comes back with the error
    assert error in response.content.decode()
    assert not campaign.dayparting.exists()
    assert reload(campaign).daily_budget == Decimal("100.00")  # nothing of the edit was stored


def test_overlapping_windows_on_one_day_are_refused(admin_client: Client, campaign: Campaign) -> None:
    windows: list[dict[str, object]] = [
        {"day_of_week": 0, "start_hour": 9, "end_hour": 17},
        {"day_of_week": 0, "start_hour": 12, "end_hour": 20},
        {"day_of_week": 1, "start_hour": 12, "end_hour": 20},
    ]

    response = admin_client.post(url("campaign_change", campaign.pk), campaign_form(campaign, windows))

    assert response.status_code == 200
    assert "Monday 09–17 overlaps Monday 12–20" in response.content.decode()
    assert not campaign.dayparting.exists()


def test_touching_windows_and_a_deleted_overlap_are_accepted(
    admin_client: Client, campaign: Campaign
) -> None:
    old = DaypartingScheduleFactory.create(campaign=campaign, day_of_week=0, start_hour=10, end_hour=14)
    windows: list[dict[str, object]] = [
        {"id": old.pk, "day_of_week": 0, "start_hour": 10, "end_hour": 14, "DELETE": True},
        {"day_of_week": 0, "start_hour": 9, "end_hour": 12},
        {"day_of_week": 0, "start_hour": 12, "end_hour": 17},
    ]

    response = admin_client.post(url("campaign_change", campaign.pk), campaign_form(campaign, windows))

    assert response.status_code == 302, response.content.decode()[:2000]
    assert list(campaign.dayparting.order_by("start_hour").values_list("start_hour", "end_hour")) == [
        (9, 12),
        (12, 17),
    ]


# --- The campaign page ---------------------------------------------------------------------------


def test_campaign_page_charts_todays_spend_by_hour_and_the_last_30_days(
    frozen_now: datetime, admin_client: Client, campaign: Campaign
) -> None:
    for _ in range(10):
        spend(campaign, "0.10", hour=9)
    spend(campaign, "7.00", day=utc_today() - timedelta(days=3), hour=20)

    page = admin_client.get(url("campaign_change", campaign.pk)).content.decode()

    assert "<title>09:00–10:00 UTC: 1.00</title>" in page
    assert "<title>10:00–11:00 UTC: 0.00</title>" in page
    assert "total 1.00" in page
    assert "<title>Sun 15 Mar 2026: 7.00</title>" in page
    assert "total 8.00" in page
    assert "daily budget 100.00" in page
    assert '<script src="http' not in page


def test_campaign_page_shows_the_status_history(admin_client: Client, campaign: Campaign) -> None:
    services.pause_campaign(campaign)
    services.resume_campaign(campaign)

    page = admin_client.get(url("campaign_change", campaign.pk)).content.decode()

    history = page[page.index('id="status-history"') :]
    assert history.count("<td>system</td>") == 2
    assert "Paused by a person" in history
    assert f"?campaign={campaign.pk}" in history


@pytest.mark.unit
def test_selectors_sum_exact_cents_per_hour_and_per_day_of_one_campaign(
    frozen_now: datetime, campaign: Campaign
) -> None:
    other = CampaignFactory.create(brand=campaign.brand)
    for _ in range(10):
        spend(campaign, "0.10", hour=9)
    spend(other, "5.00", hour=9)
    spend(campaign, "2.50", day=utc_today() - timedelta(days=29), hour=1)
    spend(campaign, "9.99", day=utc_today() - timedelta(days=30), hour=1)  # outside the window

    hours = spend_by_hour(campaign_id=campaign.pk, day=utc_today())
    days = spend_by_day(campaign_id=campaign.pk, last_day=utc_today(), days=30)

    assert len(hours) == 24
    assert hours[9].amount == Decimal("1.00")
    assert sum(h.amount for h in hours) == Decimal("1.00")
    assert len(days) == 30
    assert (days[0].day, days[0].amount) == (utc_today() - timedelta(days=29), Decimal("2.50"))
    assert (days[-1].day, days[-1].amount) == (utc_today(), Decimal("1.00"))
    assert sum(d.amount for d in days) == Decimal("3.50")


# --- Read-only records ---------------------------------------------------------------------------


def test_spend_and_the_audit_trail_are_read_only_even_for_a_superuser(
    admin_client: Client, campaign: Campaign
) -> None:
    spend(campaign, "5.00")
    services.pause_campaign(campaign)
    row = Spend.objects.get()
    audit = CampaignStatusChange.objects.get()

    assert admin_client.get(url("spend_add")).status_code == 403
    assert admin_client.post(url("spend_change", row.pk), {"amount": "1.00"}).status_code == 403
    assert admin_client.post(url("spend_delete", row.pk), {"post": "yes"}).status_code == 403
    assert admin_client.get(url("campaignstatuschange_add")).status_code == 403
    assert admin_client.post(url("campaignstatuschange_delete", audit.pk), {"post": "yes"}).status_code == 403
    assert Spend.objects.get().amount == Decimal("5.00")
    assert CampaignStatusChange.objects.count() == 1
    # Still readable, and filterable by campaign.
    listing = admin_client.get(url("spend_changelist") + f"?campaign={campaign.pk}")
    assert listing.status_code == 200
    assert list(listing.context["cl"].result_list) == [row]
    history = admin_client.get(
        url("campaignstatuschange_changelist") + f"?campaign={campaign.pk}&reason__exact=MANUAL"
    )
    assert list(history.context["cl"].result_list) == [audit]


def test_dayparting_windows_are_listed_and_edited_on_their_campaign(
    admin_client: Client, campaign_with_dayparting: Campaign
) -> None:
    window = campaign_with_dayparting.dayparting.first()
    assert window is not None
    listing = admin_client.get(url("daypartingschedule_changelist"))
    assert listing.status_code == 200
    assert url("campaign_change", campaign_with_dayparting.pk) in listing.content.decode()
    assert (
        admin_client.post(url("daypartingschedule_change", window.pk), {"start_hour": 0}).status_code == 403
    )


# --- Roles ---------------------------------------------------------------------------------------


def group_permissions(name: str) -> set[str]:
    return set(Group.objects.get(name=name).permissions.values_list("codename", flat=True))


def test_roles_migration_creates_ops_and_viewer_groups() -> None:
    assert group_permissions("Ops") == {
        "add_brand", "change_brand", "view_brand",
        "add_campaign", "change_campaign", "view_campaign",
        "add_daypartingschedule", "change_daypartingschedule",
        "delete_daypartingschedule", "view_daypartingschedule",
        "view_spend", "view_campaignstatuschange",
    }  # fmt: skip
    assert group_permissions("Viewer") == {
        "view_brand", "view_campaign", "view_daypartingschedule", "view_spend", "view_campaignstatuschange"
    }  # fmt: skip
    assert Permission.objects.filter(codename="view_spend").count() == 1


def test_viewer_can_look_but_not_change(viewer_client: Client, campaign: Campaign) -> None:
    change = viewer_client.get(url("campaign_change", campaign.pk))
    assert change.status_code == 200
    assert 'name="_save"' not in change.content.decode()
    assert "Spend today" in change.content.decode()

    assert (
        viewer_client.post(
            url("campaign_change", campaign.pk), campaign_form(campaign, daily_budget="1.00")
        ).status_code
        == 403
    )
    assert viewer_client.get(url("campaign_add")).status_code == 403
    assert (
        viewer_client.post(
            url("brand_change", campaign.brand_id), brand_form(campaign.brand, is_active="")
        ).status_code
        == 403
    )
    assert viewer_client.get(url("spend_changelist")).status_code == 200
    assert reload(campaign).daily_budget == Decimal("100.00")


def test_viewer_is_offered_no_action_and_cannot_pause(viewer_client: Client, campaign: Campaign) -> None:
    listing = viewer_client.get(url("campaign_changelist"))
    assert listing.context["action_form"] is None

    run_action(viewer_client, "pause_selected", [campaign])

    assert reload(campaign).status == CampaignStatus.ACTIVE
    assert not CampaignStatusChange.objects.exists()


def test_ops_can_edit_and_pause_but_not_touch_spend_or_delete_campaigns(
    ops_client: Client, campaign: Campaign
) -> None:
    spend(campaign, "5.00")
    row = Spend.objects.get()

    assert (
        ops_client.post(
            url("campaign_change", campaign.pk), campaign_form(campaign, daily_budget="120.00")
        ).status_code
        == 302
    )
    assert reload(campaign).daily_budget == Decimal("120.00")
    run_action(ops_client, "pause_selected", [campaign])
    assert reload(campaign).pause_reason == PauseReason.MANUAL

    assert ops_client.get(url("spend_add")).status_code == 403
    assert ops_client.post(url("spend_change", row.pk), {"amount": "1.00"}).status_code == 403
    assert ops_client.get(url("spend_changelist")).status_code == 200
    assert ops_client.get(url("campaign_delete", campaign.pk)).status_code == 403
    assert ops_client.get(url("brand_delete", campaign.brand_id)).status_code == 403
    assert Spend.objects.get().amount == Decimal("5.00")


# --- Scale: a fixed number of queries, no full count on a large table ----------------------------


def make_campaigns(count: int) -> None:
    """Campaigns over three brands, each with a window, a spend row and a status change."""
    brands = BrandFactory.create_batch(3)
    for index in range(count):
        created = CampaignFactory.create(brand=brands[index % 3])
        DaypartingScheduleFactory.create(campaign=created, day_of_week=index % 7, start_hour=0, end_hour=24)
        spend(created, "1.00")
        services.pause_campaign(created)


# Session, user, count, the page of rows (foreign keys joined), the dayparting prefetch and the
# selected brand of the autocomplete filter: the same whatever the number of rows.
LIST_QUERIES = 6


@pytest.mark.parametrize("rows", [5, 50])
@pytest.mark.parametrize(
    "page",
    [
        "campaign_changelist",
        "campaign_changelist?status__exact=PAUSED&brand_active=yes",
        "brand_changelist",
        "spend_changelist",
        "campaignstatuschange_changelist",
        "daypartingschedule_changelist",
    ],
)
def test_list_pages_run_a_fixed_number_of_queries(
    admin_client: Client, django_assert_max_num_queries: Any, rows: int, page: str
) -> None:
    make_campaigns(rows)
    name, _, query = page.partition("?")
    with django_assert_max_num_queries(LIST_QUERIES):
        response = admin_client.get(url(name) + (f"?{query}" if query else ""))
    assert response.status_code == 200


def test_campaign_list_with_a_brand_filter_runs_a_fixed_number_of_queries(
    admin_client: Client, django_assert_max_num_queries: Any
) -> None:
    make_campaigns(50)
    brand = Brand.objects.first()
    assert brand is not None
    with django_assert_max_num_queries(LIST_QUERIES):
        response = admin_client.get(url("campaign_changelist") + f"?brand={brand.pk}")
    assert len(response.context["cl"].result_list) == Campaign.objects.filter(brand=brand).count()


def test_the_list_never_counts_the_whole_table_twice(admin_client: Client) -> None:
    make_campaigns(3)
    with CaptureQueriesContext(connection) as queries:
        admin_client.get(url("campaign_changelist") + "?status__exact=PAUSED")
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    # One count, of the filtered rows; show_full_result_count is off, so no count of all rows.
    assert len(counts) == 1
    assert "WHERE" in counts[0].upper()


@pytest.mark.postgres
def test_an_unfiltered_large_list_reads_postgresqls_estimate_instead_of_counting(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert is_postgresql()
    make_campaigns(12)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Campaign._meta.db_table}")
    make_campaigns(3)  # added after the statistics: the estimate still says 12
    monkeypatch.setattr(budget_admin, "ESTIMATE_COUNT_FROM", 10)

    with CaptureQueriesContext(connection) as queries:
        unfiltered = admin_client.get(url("campaign_changelist"))
    filtered = admin_client.get(url("campaign_changelist") + "?status__exact=PAUSED")

    assert unfiltered.context["cl"].result_count == 12
    assert not [q for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert filtered.context["cl"].result_count == 15  # filtered lists are counted exactly


def test_an_unfiltered_small_list_is_counted_exactly(admin_client: Client) -> None:
    make_campaigns(4)
    assert admin_client.get(url("campaign_changelist")).context["cl"].result_count == 4

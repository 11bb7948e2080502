"""The ingestion API over HTTP: Django's test client, a live server, and schemathesis."""

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import CommandError, call_command
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, settings
from pytest_django.fixtures import Settings
from pytest_django.live_server_helper import LiveServer
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from apps.budget import api_keys
from apps.budget.choices import CampaignStatus, PauseReason
from apps.budget.conftest import CampaignFactory
from apps.budget.models import ApiKey, Brand, Campaign, CampaignStatusChange, Spend

pytestmark = pytest.mark.django_db

TODAY = "2026-03-18"  # FROZEN_NOW's day; it is 12:00 UTC


@pytest.fixture
def api_key(db: None) -> str:
    _key, raw = api_keys.create_api_key(name="platform")
    return raw


def post(client: Client, body: object, key: str | None, **headers: str) -> Any:
    if key is not None:
        headers.setdefault("Authorization", f"Bearer {key}")
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post("/api/v1/spend", data=data, content_type="application/json", headers=headers)


def record(campaign: Campaign, amount: object, key: str | None = None, hour: int = 9) -> dict[str, object]:
    return {"campaign_id": campaign.pk, "amount": amount, "date": TODAY, "hour": hour, "external_id": key}


# --- POST /api/v1/spend --------------------------------------------------------------------------


def test_batch_answers_per_record_and_pauses_the_campaign_within_the_request(
    frozen_now: datetime, client: Client, api_key: str, campaign: Campaign
) -> None:
    body = {
        "records": [
            record(campaign, "60.00", "p-1"),
            record(campaign, "60.00", "p-1"),
            record(campaign, 45.5, "p-2"),
            record(campaign, "45.50", "p-3"),
        ]
    }

    response = post(client, body, api_key)

    assert response.status_code == 200
    assert response.json() == {
        "created": 2,
        "duplicates": 1,
        "errors": 1,
        "results": [
            {"index": 0, "status": "created", "errors": []},
            {"index": 1, "status": "duplicate", "errors": []},
            {
                "index": 2,
                "status": "error",
                "errors": [
                    {
                        "field": "amount",
                        "message": 'amount must be a decimal string such as "12.34", not the number 45.5: '
                        "a JSON number may already have lost its cents",
                    }
                ],
            },
            {"index": 3, "status": "created", "errors": []},
        ],
    }
    campaign.refresh_from_db()
    assert (campaign.status, campaign.pause_reason) == (CampaignStatus.PAUSED, PauseReason.DAILY_BUDGET)
    assert campaign.daily_spend == Decimal("105.50")
    assert CampaignStatusChange.objects.get(campaign=campaign).actor == "api:platform"


def test_x_api_key_header_works_like_bearer(
    frozen_now: datetime, client: Client, api_key: str, campaign: Campaign
) -> None:
    response = post(client, {"records": [record(campaign, "1.00")]}, None, **{"X-API-Key": api_key})

    assert response.status_code == 200
    assert response.json()["created"] == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer bms_000000000000_wrong"},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"X-API-Key": "bms_nope_nope"},
    ],
)
def test_missing_or_wrong_key_is_401_and_stores_nothing(
    frozen_now: datetime, client: Client, campaign: Campaign, headers: dict[str, str]
) -> None:
    response = post(client, {"records": [record(campaign, "1.00")]}, None, **headers)

    assert response.status_code == 401
    assert response.json() == {"detail": "Unauthorized"}
    assert not Spend.objects.exists()


def test_revoked_key_is_401(frozen_now: datetime, client: Client, api_key: str, campaign: Campaign) -> None:
    assert post(client, {"records": [record(campaign, "1.00")]}, api_key).status_code == 200

    api_keys.revoke(ApiKey.objects.all())

    assert post(client, {"records": [record(campaign, "1.00")]}, api_key).status_code == 401


def test_key_limited_to_a_brand_gets_403_naming_the_campaigns_and_nothing_is_stored(
    frozen_now: datetime, client: Client, campaign: Campaign
) -> None:
    own = CampaignFactory.create()
    _key, raw = api_keys.create_api_key(name="limited", brands=[Brand.objects.get(pk=own.brand_id)])

    refused = post(client, {"records": [record(own, "1.00"), record(campaign, "1.00")]}, raw)
    accepted = post(client, {"records": [record(own, "1.00")]}, raw)

    assert refused.status_code == 403
    assert refused.json()["campaign_ids"] == [campaign.pk]
    assert f"campaign(s) {campaign.pk}" in refused.json()["detail"]
    assert accepted.status_code == 200
    assert list(Spend.objects.values_list("campaign_id", flat=True)) == [own.pk]


def test_malformed_json_is_400(client: Client, api_key: str) -> None:
    response = post(client, '{"records": [', api_key)

    assert response.status_code == 400
    assert response.json()["detail"].startswith("Cannot parse request body")


def test_body_not_shaped_like_the_schema_is_422_but_a_garbage_record_is_its_own_error(
    client: Client, api_key: str
) -> None:
    assert post(client, {"rows": []}, api_key).status_code == 422
    assert post(client, {"records": "all of them"}, api_key).status_code == 422

    response = post(client, {"records": [17]}, api_key)

    assert response.status_code == 200
    assert response.json()["results"][0]["errors"] == [
        {"field": name, "message": f"{name} is required"}
        for name in ("campaign_id", "amount", "date", "hour")
    ]


def test_more_than_ten_thousand_records_is_413(
    frozen_now: datetime, client: Client, api_key: str, campaign: Campaign
) -> None:
    response = post(client, {"records": [{"campaign_id": campaign.pk}] * 10_001}, api_key)

    assert response.status_code == 413
    assert response.json() == {"detail": "10001 records in one batch; at most 10000 are accepted"}
    assert not Spend.objects.exists()


def test_body_over_the_size_limit_is_413_before_it_is_read(
    client: Client, api_key: str, settings: Settings
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = post(client, {"records": [], "padding": "x" * 2000}, api_key)

    assert response.status_code == 413
    assert "at most 1000 are accepted" in response.json()["detail"]


def test_ten_thousand_records_in_one_request(
    frozen_now: datetime, client: Client, api_key: str, settings: Settings
) -> None:
    campaigns = CampaignFactory.create_batch(
        50, daily_budget=Decimal("1000000.00"), monthly_budget=Decimal("1000000.00")
    )
    records = [
        {
            "campaign_id": campaigns[n % 50].pk,
            "amount": "0.01",
            "date": TODAY,
            "hour": n % 12,
            "external_id": f"{n}",
        }
        for n in range(10_000)
    ]

    response = post(client, {"records": records}, api_key)

    assert response.status_code == 200
    assert response.json()["created"] == 10_000
    assert Campaign.objects.get(pk=campaigns[0].pk).daily_spend == Decimal("2.00")


# --- GET /api/v1/campaigns/{id} ------------------------------------------------------------------


def test_campaign_status_budgets_and_spend_as_decimal_strings(
    frozen_now: datetime, client: Client, api_key: str, campaign: Campaign
) -> None:
    post(client, {"records": [record(campaign, "100.00", "c-1")]}, api_key)

    response = client.get(f"/api/v1/campaigns/{campaign.pk}", headers={"Authorization": f"Bearer {api_key}"})

    assert response.status_code == 200
    brand = Brand.objects.get(pk=campaign.brand_id)
    assert response.json() == {
        "id": campaign.pk,
        "name": campaign.name,
        "status": "PAUSED",
        "reason": "DAILY_BUDGET",
        "start_date": "2026-03-01",
        "end_date": None,
        "daily_budget": "100.00",
        "daily_spend": "100.00",
        "monthly_budget": "2000.00",
        "monthly_spend": "100.00",
        "brand": {
            "id": brand.pk,
            "name": brand.name,
            "is_active": True,
            "daily_budget": "5000.00",
            "daily_spend": "100.00",
            "monthly_budget": "100000.00",
            "monthly_spend": "100.00",
        },
    }


def test_campaign_lookup_errors(
    frozen_now: datetime, client: Client, api_key: str, campaign: Campaign
) -> None:
    other = CampaignFactory.create()
    _key, limited = api_keys.create_api_key(name="limited", brands=[Brand.objects.get(pk=other.brand_id)])

    assert client.get(f"/api/v1/campaigns/{campaign.pk}").status_code == 401
    assert client.get("/api/v1/campaigns/987654", headers={"X-API-Key": api_key}).status_code == 404
    forbidden = client.get(f"/api/v1/campaigns/{campaign.pk}", headers={"X-API-Key": limited})
    assert (forbidden.status_code, forbidden.json()["campaign_ids"]) == (403, [campaign.pk])
    assert client.get(f"/api/v1/campaigns/{other.pk}", headers={"X-API-Key": limited}).status_code == 200


def test_openapi_documents_amount_as_a_string(client: Client) -> None:
    schema = client.get("/api/v1/openapi.json").json()

    record_schema = schema["components"]["schemas"]["SpendRecordIn"]
    assert record_schema["properties"]["amount"]["type"] == "string"
    assert record_schema["required"] == ["campaign_id", "amount", "date", "hour"]
    assert "/api/v1/spend" in schema["paths"]


# --- A live server, over the network ----------------------------------------------------------


def call(url: str, key: str, body: object | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - the live server's http URL
        url, data=data, headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - as above
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.django_db(transaction=True)
def test_live_server_batch_crossing_a_budget_shows_paused_right_after(live_server: LiveServer) -> None:
    # Real time: the server runs in another thread, which freezegun does not reach.
    _key, raw = api_keys.create_api_key(name="live")
    campaign = CampaignFactory.create(daily_budget=Decimal("50.00"))
    today = timezone.now().date().isoformat()
    records = [
        {"campaign_id": campaign.pk, "amount": "30.00", "date": today, "hour": 0, "external_id": "live-1"},
        {"campaign_id": campaign.pk, "amount": "20.00", "date": today, "hour": 0, "external_id": "live-2"},
        {"campaign_id": campaign.pk, "amount": "20.00", "date": "2999-01-01", "hour": 0},
    ]

    status, answer = call(f"{live_server.url}/api/v1/spend", raw, {"records": records})
    shown_status, shown = call(f"{live_server.url}/api/v1/campaigns/{campaign.pk}", raw)

    assert status == 200
    assert [result["status"] for result in answer["results"]] == ["created", "created", "error"]
    assert answer["results"][2]["errors"][0]["field"] == "date"
    assert shown_status == 200
    assert (shown["status"], shown["reason"], shown["daily_spend"]) == ("PAUSED", "DAILY_BUDGET", "50.00")
    assert call(f"{live_server.url}/api/v1/spend", "bms_x_y", {"records": []})[0] == 401


# --- schemathesis against the generated OpenAPI -------------------------------------------------


# Loaded at import (pytest-django has set Django up by then); the schema needs no database.
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", WSGIHandler())


@pytest.fixture
def keep_test_connection() -> Iterator[None]:
    """Calls through the bare WSGI handler must not close the test's connection at request end
    (Django's test client disconnects the same handler)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def campaign_42(db: None) -> Campaign:
    """The id the schema's example names, so that generated records also reach a real campaign."""
    return CampaignFactory.create(pk=42, daily_budget=Decimal("10.00"))


@schema.parametrize()
# Bounded so the run stays well under a minute; no example database written to the tree.
@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_generated_requests_never_get_a_server_error(
    case: Any, api_key: str, campaign_42: Campaign, keep_test_connection: None
) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {api_key}"},
        # A wrong record is answered in its place with a 200, by design (the batch's other
        # records are stored): schema-invalid records are accepted, not rejected. And a schema-
        # valid campaign id that does not exist is a 404. So these two checks do not apply.
        excluded_checks=[negative_data_rejection, positive_data_acceptance],
    )


# --- Keys are made and revoked in the admin ------------------------------------------------------


def test_admin_creates_a_key_shown_once_and_revokes_it(
    frozen_now: datetime, admin_client: Client, campaign: Campaign
) -> None:
    # when: a person adds a key limited to the campaign's brand
    response = admin_client.post(
        "/admin/budget/apikey/add/", {"name": "ad-platform", "brands": [campaign.brand_id]}, follow=True
    )

    # then: the full key is in the confirmation, only its hash in the database
    shown = [str(message) for message in response.context["messages"]]
    raw = next(word for text in shown for word in text.split() if word.startswith("bms_"))
    stored = ApiKey.objects.get(name="ad-platform")
    assert raw not in (stored.prefix, stored.secret_hash)
    assert stored.secret_hash == api_keys.hash_key(raw)
    assert raw not in admin_client.get(f"/admin/budget/apikey/{stored.pk}/change/").content.decode()
    assert post(admin_client, {"records": [record(campaign, "1.00")]}, raw).status_code == 200

    # when: the person revokes it
    admin_client.post(
        "/admin/budget/apikey/", {"action": "revoke_keys", "_selected_action": [stored.pk]}, follow=True
    )

    # then: it stops working at once
    stored.refresh_from_db()
    assert stored.revoked_at is not None
    assert post(admin_client, {"records": [record(campaign, "1.00")]}, raw).status_code == 401


def test_admin_pages_of_the_integrations_render(admin_client: Client, api_key: str) -> None:
    for page in ("apikey", "webhookendpoint", "webhookdelivery"):
        assert admin_client.get(f"/admin/budget/{page}/").status_code == 200
    add_endpoint = admin_client.get("/admin/budget/webhookendpoint/add/")
    assert add_endpoint.status_code == 200
    assert add_endpoint.context["adminform"].form.initial["secret"]  # a generated secret


def test_create_api_key_command_prints_a_working_key_once(
    frozen_now: datetime, client: Client, campaign: Campaign
) -> None:
    out, err = StringIO(), StringIO()
    call_command("create_api_key", "script", "--brand", str(campaign.brand_id), stdout=out, stderr=err)

    raw = out.getvalue().strip()
    assert "not shown again" in err.getvalue()
    assert ApiKey.objects.get(name="script").secret_hash == api_keys.hash_key(raw)
    assert post(client, {"records": [record(campaign, "1.00")]}, raw).status_code == 200
    with pytest.raises(CommandError, match="name: API key with this Name already exists"):
        call_command("create_api_key", "script", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="no brand with id 987654"):
        call_command("create_api_key", "other", "--brand", "987654", stdout=StringIO(), stderr=StringIO())

"""The ingestion API for integrations (django-ninja; OpenAPI at /api/v1/openapi.json, docs at /api/v1/docs).

- `POST /api/v1/spend`: a batch of spend records, answered per record (see `ingestion`).
- `GET /api/v1/campaigns/{id}`: a campaign's status, reason, budgets and spend.

Authentication: `Authorization: Bearer <key>` (or `X-API-Key: <key>`) with a key made in the
admin. Errors, always JSON `{"detail": ...}`: 400 body is not JSON, 401 missing / unknown /
revoked key, 403 campaign outside the key's brands, 404 no such campaign, 413 body over
DATA_UPLOAD_MAX_MEMORY_SIZE or more than 10,000 records, 422 body not shaped like the schema
(e.g. `records` missing). A record that is wrong in itself is not an error of the request: it is
reported in its place in the 200 answer, and the other records are stored.

Money is a decimal string both ways: JSON numbers go through floats and lose cents.
"""

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from ninja import NinjaAPI, Path, Schema
from ninja.errors import HttpError
from ninja.security import HttpBearer
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from apps.budget import api_keys
from apps.budget.clock import utc_now
from apps.budget.ingestion import MAX_BATCH, BatchTooLarge, BrandNotAllowed, RecordStatus, record_spend_batch
from apps.budget.models import ApiKey, BudgetedModel, Campaign
from apps.budget.rules import Moment
from apps.budget.services import BIGINT_MAX

api = NinjaAPI(
    title="Budget Management System — ingestion API",
    version="1",
    description=__doc__ or "",
    urls_namespace="api-v1",
)


# --- Authentication ------------------------------------------------------------------------------


class ApiKeyAuth(HttpBearer):
    """`Authorization: Bearer <key>`, or `X-API-Key: <key>` for clients that cannot set the former."""

    def __call__(self, request: HttpRequest) -> ApiKey | None:
        header_key = request.headers.get("X-API-Key")
        if header_key:
            return self.authenticate(request, header_key)
        key: ApiKey | None = super().__call__(request)
        return key

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        api_key = api_keys.authenticate(token)
        if api_key is not None:
            # Checked here, before anything reads the body, and only for a known caller.
            _refuse_oversize(request)
        return api_key


def _refuse_oversize(request: HttpRequest) -> None:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise HttpError(400, "Content-Length is not a number") from None
    if limit is not None and length > limit:
        raise HttpError(413, f"the body has {length} bytes; at most {limit} are accepted")


def _key(request: HttpRequest) -> ApiKey:
    api_key = request.auth  # type: ignore[attr-defined]  # set by ninja once ApiKeyAuth accepted it
    assert isinstance(api_key, ApiKey)
    return api_key


# --- Schemas -------------------------------------------------------------------------------------


class ErrorOut(Schema):
    detail: str


class InvalidRequestOut(Schema):
    """The body or a path parameter does not fit the schema (ninja's validation errors)."""

    detail: list[dict[str, Any]]


class ForbiddenOut(Schema):
    detail: str
    campaign_ids: list[int] = []


# The batch's models are plain pydantic models, not ninja `Schema`s: a Schema runs a validator
# per object that reads Django model attributes, which the 10,000 records and their 10,000
# results of a full batch do not have (it took a third of the request's time).


class SpendRecordIn(BaseModel):
    """One spend record. Fields are checked one record at a time (wrong ones are reported in the
    answer, at the record's index), so the documented types are not enforced on the whole body."""

    model_config = ConfigDict(
        json_schema_extra={"required": ["campaign_id", "amount", "date", "hour"]},
    )

    campaign_id: Annotated[Any, WithJsonSchema({"type": "integer", "minimum": 1, "example": 42})] = None
    amount: Annotated[
        Any,
        WithJsonSchema(
            {
                "type": "string",
                "pattern": r"^[0-9]{1,10}(\.[0-9]{1,2})?$",
                "description": "Positive decimal string with at most 2 places; JSON numbers are refused.",
                "example": "12.34",
            }
        ),
    ] = None
    date: Annotated[
        Any,
        WithJsonSchema({"type": "string", "format": "date", "description": "UTC day, not in the future."}),
    ] = None
    hour: Annotated[
        Any,
        WithJsonSchema(
            {"type": "integer", "minimum": 0, "maximum": 23, "description": "UTC hour, not in the future."}
        ),
    ] = None
    external_id: Annotated[
        Any,
        WithJsonSchema(
            {
                "type": ["string", "null"],
                "minLength": 1,
                "maxLength": 255,
                "description": "Idempotency key: a record sent again with it is stored once.",
            }
        ),
    ] = None

    @model_validator(mode="before")
    @classmethod
    def _anything_is_a_record(cls, value: object) -> object:
        # A record that is not an object is reported at its index as missing every field.
        return value if isinstance(value, dict) else {}

    def as_record(self) -> dict[str, object]:
        return {
            name: getattr(self, name) for name in ("campaign_id", "amount", "date", "hour", "external_id")
        }


class SpendBatchIn(BaseModel):
    records: list[SpendRecordIn] = Field(description=f"At most {MAX_BATCH} records (more: 413).")


class FieldErrorOut(BaseModel):
    field: str
    message: str


class RecordResultOut(BaseModel):
    index: int
    status: Literal["created", "duplicate", "error"]
    errors: list[FieldErrorOut] = []


class SpendBatchOut(BaseModel):
    created: int
    duplicates: int
    errors: int
    results: list[RecordResultOut]


class BudgetOut(Schema):
    """Budgets and the spend of the current UTC day and month, as decimal strings."""

    daily_budget: str
    daily_spend: str
    monthly_budget: str
    monthly_spend: str


class BrandOut(BudgetOut):
    id: int
    name: str
    is_active: bool


class CampaignOut(BudgetOut):
    id: int
    name: str
    status: str
    reason: str
    start_date: date
    end_date: date | None
    brand: BrandOut


# --- Endpoints -----------------------------------------------------------------------------------


@api.post(
    "/spend",
    auth=ApiKeyAuth(),
    response={
        200: SpendBatchOut,
        400: ErrorOut,
        401: ErrorOut,
        403: ForbiddenOut,
        413: ErrorOut,
        422: InvalidRequestOut,
    },
    summary="Record a batch of spend",
)
def post_spend(request: HttpRequest, batch: SpendBatchIn) -> SpendBatchOut:
    """Store the valid records, report the others; a batch crossing a budget pauses at once."""
    api_key = _key(request)
    if len(batch.records) > MAX_BATCH:
        raise BatchTooLarge(len(batch.records))
    results = record_spend_batch(
        [record.as_record() for record in batch.records],
        actor=api_keys.actor(api_key),
        allowed_brand_ids=api_keys.allowed_brand_ids(api_key),
    )
    outcomes = [result.status for result in results]
    return SpendBatchOut(
        created=outcomes.count(RecordStatus.CREATED),
        duplicates=outcomes.count(RecordStatus.DUPLICATE),
        errors=outcomes.count(RecordStatus.ERROR),
        results=[
            RecordResultOut(
                index=result.index,
                status=result.status.value,
                errors=[
                    FieldErrorOut(field=name, message=message)
                    for name, messages in result.errors.items()
                    for message in messages
                ],
            )
            for result in results
        ],
    )


@api.get(
    "/campaigns/{campaign_id}",
    auth=ApiKeyAuth(),
    response={200: CampaignOut, 401: ErrorOut, 403: ForbiddenOut, 404: ErrorOut, 422: InvalidRequestOut},
    summary="A campaign's status, budgets and spend",
)
def get_campaign(request: HttpRequest, campaign_id: Annotated[int, Path(ge=1, le=BIGINT_MAX)]) -> CampaignOut:
    allowed = api_keys.allowed_brand_ids(_key(request))
    campaign = get_object_or_404(Campaign.objects.select_related("brand"), pk=campaign_id)
    if allowed is not None and campaign.brand_id not in allowed:
        raise BrandNotAllowed([campaign.pk])
    moment = Moment.at(utc_now())
    brand = campaign.brand
    return CampaignOut(
        id=campaign.pk,
        name=campaign.name,
        status=campaign.status,
        reason=campaign.pause_reason,
        start_date=campaign.start_date,
        end_date=campaign.end_date,
        brand=BrandOut(id=brand.pk, name=brand.name, is_active=brand.is_active, **_budget(brand, moment)),
        **_budget(campaign, moment),
    )


def _budget(owner: BudgetedModel, moment: Moment) -> dict[str, str]:
    # An aggregate still counting an earlier day / month counts nothing now (a missed reset).
    spending = owner.spending()
    return {
        "daily_budget": _money(spending.daily_budget),
        "daily_spend": _money(spending.daily_used(moment)),
        "monthly_budget": _money(spending.monthly_budget),
        "monthly_spend": _money(spending.monthly_used(moment)),
    }


def _money(amount: Decimal) -> str:
    return f"{amount:.2f}"


# --- Errors as JSON --------------------------------------------------------------------------------


@api.exception_handler(BrandNotAllowed)
def _brand_not_allowed(request: HttpRequest, error: BrandNotAllowed) -> HttpResponse:
    return api.create_response(
        request, {"detail": str(error), "campaign_ids": error.campaign_ids}, status=403
    )


@api.exception_handler(BatchTooLarge)
def _batch_too_large(request: HttpRequest, error: BatchTooLarge) -> HttpResponse:
    return api.create_response(request, {"detail": str(error)}, status=413)

"""Models: exact money, the database's own guarantees, and defaults."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, ProtectedError, Sum, Value

from apps.budget.choices import CampaignStatus, PauseReason
from apps.budget.clock import utc_today
from apps.budget.conftest import BrandFactory, CampaignFactory, DaypartingScheduleFactory, SpendFactory
from apps.budget.models import Brand, Campaign, DaypartingSchedule, Spend
from apps.budget.money import from_cents, parse_money, to_cents

pytestmark = pytest.mark.django_db


def raw_column(table: str, column: str, pk: int) -> object:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])
        row = cursor.fetchone()
    assert row is not None
    return row[0]


def test_money_is_stored_as_integer_cents_and_read_as_decimal(campaign: Campaign) -> None:
    spend = SpendFactory.create(campaign=campaign, amount=Decimal("99.99"))
    assert raw_column(Spend._meta.db_table, "amount", spend.pk) == 9999
    spend.refresh_from_db()
    assert spend.amount == Decimal("99.99")
    assert isinstance(spend.amount, Decimal)
    assert spend.amount.as_tuple().exponent == -2


def test_ten_dimes_sum_to_exactly_one_in_sql(campaign: Campaign) -> None:
    # On SQLite a DecimalField sums these to 0.9999999999999999; integer cents stay exact.
    SpendFactory.create_batch(10, campaign=campaign, amount=Decimal("0.10"))
    total = Spend.objects.filter(campaign=campaign).aggregate(total=Sum("amount"))["total"]
    assert total == Decimal("1.00")
    assert Spend.objects.filter(campaign=campaign).aggregate(total=Sum("amount")) == {
        "total": Decimal("1.00")
    }
    assert Campaign.objects.filter(pk=campaign.pk, daily_budget__lte=Decimal("100.00")).exists()


def test_amounts_inside_expressions_must_be_converted_to_cents(campaign: Campaign) -> None:
    # The hazard SPEC names: inside an expression the Decimal is not converted, so convert it.
    Campaign.objects.filter(pk=campaign.pk).update(
        daily_spend=F("daily_spend") + Value(to_cents(Decimal("99.99")))
    )
    campaign.refresh_from_db()
    assert campaign.daily_spend == Decimal("99.99")


@pytest.mark.unit
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12.5", Decimal("12.50")),
        (Decimal("0.01"), Decimal("0.01")),
        (7, Decimal("7.00")),
        (" 3.10 ", Decimal("3.10")),
    ],
)
def test_parse_money_accepts_decimal_int_and_strings(value: object, expected: Decimal) -> None:
    assert parse_money(value, field="amount") == expected


@pytest.mark.unit
@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0.1, "not float"),
        (True, "not bool"),
        ("1.001", "more than 2 decimal places"),
        ("abc", "is not a decimal number"),
        ("NaN", "is not a finite number"),
        ("1000000000.01", "above the maximum"),
        (None, "not NoneType"),
    ],
)
def test_parse_money_refuses_what_cannot_be_cents(value: object, message: str) -> None:
    with pytest.raises(ValidationError) as error:
        parse_money(value, field="amount")
    assert list(error.value.message_dict) == ["amount"]
    assert message in error.value.message_dict["amount"][0]


@pytest.mark.unit
def test_cents_conversion_is_exact_both_ways() -> None:
    assert to_cents(Decimal("1000000000.00")) == 100_000_000_000
    assert from_cents(1) == Decimal("0.01")
    assert from_cents(0) == Decimal("0.00")
    with pytest.raises(ValueError, match="whole number of cents"):
        to_cents(Decimal("0.001"))


def test_create_with_names_budgets_brand_and_dates_fills_every_default(brand: Brand) -> None:
    created = Campaign.objects.create(
        brand=brand,
        name="Spring sale",
        daily_budget=Decimal("10.00"),
        monthly_budget=Decimal("100.00"),
        start_date=utc_today(),
        end_date=None,
    )
    created.refresh_from_db()
    assert (created.status, created.pause_reason) == (CampaignStatus.ACTIVE, "")
    assert (created.daily_spend, created.monthly_spend) == (Decimal("0.00"), Decimal("0.00"))
    assert created.daily_spend_day == utc_today()
    assert created.monthly_spend_month == utc_today().replace(day=1)
    assert brand.is_active


@pytest.mark.parametrize(
    ("model", "changes"),
    [
        (Brand, {"daily_budget": Decimal("-0.01")}),
        (Brand, {"monthly_spend": Decimal("-1.00")}),
        (Campaign, {"monthly_budget": Decimal("-5.00")}),
        (Campaign, {"daily_spend": Decimal("-0.01")}),
        (Campaign, {"status": "RUNNING"}),
        (Campaign, {"pause_reason": "BORED"}),
        (Campaign, {"status": CampaignStatus.ACTIVE, "pause_reason": PauseReason.MANUAL}),
        (Campaign, {"status": CampaignStatus.COMPLETED, "pause_reason": PauseReason.DAILY_BUDGET}),
        (Campaign, {"end_date": utc_today() - timedelta(days=400)}),
    ],
)
def test_the_database_refuses_what_must_never_be_true(
    campaign: Campaign, model: type[Brand | Campaign], changes: dict[str, object]
) -> None:
    pk = campaign.brand_id if model is Brand else campaign.pk
    with pytest.raises(IntegrityError), transaction.atomic():
        model.objects.filter(pk=pk).update(**changes)


@pytest.mark.parametrize(
    "fields",
    [
        {"amount": Decimal("0.00")},
        {"amount": Decimal("-3.00")},
        {"hour": 24},
    ],
)
def test_the_database_refuses_bad_spend_rows(campaign: Campaign, fields: dict[str, object]) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        SpendFactory.create(campaign=campaign, **fields)


@pytest.mark.parametrize(
    ("day", "start", "end"),
    [(7, 9, 17), (0, 17, 9), (0, 9, 9), (0, 0, 25), (0, 24, 24)],
)
def test_the_database_refuses_bad_dayparting_windows(
    campaign: Campaign, day: int, start: int, end: int
) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        DaypartingSchedule.objects.create(campaign=campaign, day_of_week=day, start_hour=start, end_hour=end)


def test_a_whole_day_window_is_allowed(campaign: Campaign) -> None:
    window = DaypartingScheduleFactory.create(campaign=campaign, day_of_week=6, start_hour=0, end_hour=24)
    window.full_clean()


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({"daily_budget": Decimal("-1.00")}, "daily_budget", "greater than or equal to 0"),
        ({"end_date": utc_today() - timedelta(days=400)}, "end_date", "is before start_date"),
    ],
)
def test_validation_names_the_field(
    campaign: Campaign, fields: dict[str, object], field: str, fragment: str
) -> None:
    for name, value in fields.items():
        setattr(campaign, name, value)
    with pytest.raises(ValidationError) as error:
        campaign.full_clean()
    assert fragment in " ".join(error.value.message_dict[field])


def test_dayparting_validation_names_end_hour(campaign: Campaign) -> None:
    window = DaypartingSchedule(campaign=campaign, day_of_week=0, start_hour=17, end_hour=9)
    with pytest.raises(ValidationError) as error:
        window.full_clean()
    assert "end_hour 9 must be after start_hour 17" in error.value.message_dict["end_hour"][0]


def test_spend_records_are_never_lost_by_deleting_their_campaign_or_brand(campaign: Campaign) -> None:
    SpendFactory.create(campaign=campaign)
    with pytest.raises(ProtectedError):
        campaign.delete()
    with pytest.raises(ProtectedError):
        campaign.brand.delete()
    assert Spend.objects.filter(campaign=campaign).count() == 1


def test_external_id_is_unique_but_optional(campaign: Campaign) -> None:
    SpendFactory.create(campaign=campaign, external_id=None)
    SpendFactory.create(campaign=campaign, external_id=None)
    SpendFactory.create(campaign=campaign, external_id="platform-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        SpendFactory.create(campaign=campaign, external_id="platform-1")


def test_brand_names_are_unique() -> None:
    BrandFactory.create(name="Acme")
    with pytest.raises(IntegrityError), transaction.atomic():
        Brand.objects.create(name="Acme", daily_budget=Decimal("1.00"), monthly_budget=Decimal("1.00"))


def test_campaign_names_are_unique_within_a_brand(brand: Brand) -> None:
    CampaignFactory.create(brand=brand, name="Launch")
    CampaignFactory.create(name="Launch")  # another brand may use the name
    with pytest.raises(IntegrityError), transaction.atomic():
        CampaignFactory.create(brand=brand, name="Launch")


@pytest.mark.postgres
def test_budget_tables_leave_room_for_updates_that_touch_no_index() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reloptions FROM pg_class WHERE relname IN (%s, %s) ORDER BY relname",
            [Brand._meta.db_table, Campaign._meta.db_table],
        )
        options = cursor.fetchall()

    assert options == [
        (Brand._meta.db_table, ["fillfactor=80"]),
        (Campaign._meta.db_table, ["fillfactor=80"]),
    ]

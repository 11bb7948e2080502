"""Money: `Decimal` with two places in Python, exact integer cents in the database.

SQLite keeps `DecimalField` values as floating point, so sums and comparisons done in SQL drift
(10 x 0.10 != 1.00). Integer cents are exact on every database; `CentsField` converts at the
boundary so that Python code only ever sees `Decimal`.
"""

from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.expressions import Expression

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
# The largest single amount or budget accepted: far above any real figure, far below bigint cents.
MAX_AMOUNT = Decimal("1000000000.00")


def parse_money(value: object, *, field: str) -> Decimal:
    """`value` as an exact two-place Decimal, or a ValidationError naming `field` and the value.

    Accepts Decimal, int and decimal strings. Floats are refused: they cannot hold cents exactly.
    """
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        raise ValidationError(
            {field: f"{field} must be a decimal string, Decimal or int, not {type(value).__name__} {value!r}"}
        )
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise ValidationError({field: f"{field} {value!r} is not a decimal number"}) from None
    if not amount.is_finite():
        raise ValidationError({field: f"{field} {value!r} is not a finite number"})
    # Bounded first: quantizing a huge value ("1e100") to cents overflows Decimal's precision.
    if abs(amount) > MAX_AMOUNT:
        raise ValidationError({field: f"{field} {value!r} is above the maximum of {MAX_AMOUNT}"})
    if amount != amount.quantize(CENT, rounding="ROUND_DOWN"):
        raise ValidationError({field: f"{field} {value!r} has more than 2 decimal places"})
    return amount.quantize(CENT)


def to_cents(amount: Decimal) -> int:
    """Exact integer cents of a two-place amount; use it for amounts inside SQL expressions."""
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"{amount!r} is not a whole number of cents")
    return int(cents)


def from_cents(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


class CentsField(models.Field[Decimal | int | str, Decimal]):
    """A money column stored as a bigint of cents, read and written as a two-place Decimal.

    Inside expressions (`F("x") + amount`) Django does not call `get_prep_value`: convert the
    amount with `to_cents` there yourself.
    """

    description = "Money in cents, exposed as Decimal"

    def get_internal_type(self) -> str:
        return "BigIntegerField"

    def from_db_value(
        self, value: int | None, expression: Expression, connection: BaseDatabaseWrapper
    ) -> Decimal | None:
        return None if value is None else from_cents(int(value))

    def to_python(self, value: Any) -> Decimal | None:
        if value is None or value == "":
            return None
        return parse_money(value, field=self.name)

    def get_prep_value(self, value: Any) -> int | None:
        value = super().get_prep_value(value)
        if value is None:
            return None
        return to_cents(parse_money(value, field=self.name))

    def formfield(
        self,
        form_class: type[forms.Field] | None = None,
        choices_form_class: type[forms.ChoiceField] | None = None,
        **kwargs: Any,
    ) -> forms.Field | None:
        defaults: dict[str, Any] = {
            "max_digits": 12,
            "decimal_places": 2,
            "min_value": ZERO,
            "max_value": MAX_AMOUNT,
        }
        defaults.update(kwargs)
        return super().formfield(
            form_class=form_class or forms.DecimalField, choices_form_class=choices_form_class, **defaults
        )

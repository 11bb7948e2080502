"""Data of the Budget Management System (SPEC, "Data").

Thin models: fields, constraints and indexes only. Every write that carries a business rule goes
through `apps.budget.services`; the status rule lives in `apps.budget.rules`.
"""

from typing import ClassVar

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from apps.budget.choices import CampaignStatus, PauseReason
from apps.budget.clock import utc_month_start, utc_today
from apps.budget.money import ZERO, CentsField
from apps.budget.rules import Spending

ZERO_CENTS = 0


class BudgetedModel(models.Model):
    """Budgets and the spend aggregates counted against them (shared by Brand and Campaign)."""

    daily_budget = CentsField(validators=[MinValueValidator(ZERO)])
    monthly_budget = CentsField(validators=[MinValueValidator(ZERO)])
    # The aggregates count the spend of one UTC day / month, named beside them, so that a missed
    # reset never lets yesterday's spend block today (SPEC, "Periodic jobs").
    daily_spend = CentsField(default=ZERO_CENTS, editable=False)
    daily_spend_day = models.DateField(default=utc_today, editable=False)
    monthly_spend = CentsField(default=ZERO_CENTS, editable=False)
    monthly_spend_month = models.DateField(default=utc_month_start, editable=False)

    class Meta:
        abstract = True
        constraints = [
            models.CheckConstraint(
                condition=Q(daily_budget__gte=0, monthly_budget__gte=0),
                name="%(class)s_budgets_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(daily_spend__gte=0, monthly_spend__gte=0),
                name="%(class)s_spends_not_negative",
            ),
        ]

    def spending(self) -> Spending:
        return Spending(
            daily_budget=self.daily_budget,
            monthly_budget=self.monthly_budget,
            daily_spend=self.daily_spend,
            monthly_spend=self.monthly_spend,
            daily_spend_day=self.daily_spend_day,
            monthly_spend_month=self.monthly_spend_month,
        )


class Brand(BudgetedModel):
    name = models.CharField(max_length=200, unique=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects: ClassVar[models.Manager["Brand"]] = models.Manager()

    class Meta(BudgetedModel.Meta):
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Campaign(BudgetedModel):
    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="campaigns")
    name = models.CharField(max_length=200)
    status = models.CharField(
        max_length=16, choices=CampaignStatus.choices, default=CampaignStatus.ACTIVE, editable=False
    )
    pause_reason = models.CharField(
        max_length=32, choices=PauseReason.choices, default=PauseReason.NONE, blank=True, editable=False
    )
    start_date = models.DateField(default=utc_today)
    end_date = models.DateField(null=True, blank=True, help_text="Empty: runs until stopped.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects: ClassVar[models.Manager["Campaign"]] = models.Manager()

    class Meta(BudgetedModel.Meta):
        ordering = ["brand_id", "name"]
        constraints = [
            *BudgetedModel.Meta.constraints,
            models.UniqueConstraint(fields=["brand", "name"], name="campaign_name_unique_per_brand"),
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=F("start_date")),
                name="campaign_end_not_before_start",
            ),
            models.CheckConstraint(
                condition=Q(status__in=CampaignStatus.values), name="campaign_status_known"
            ),
            models.CheckConstraint(
                condition=Q(pause_reason__in=PauseReason.values), name="campaign_pause_reason_known"
            ),
            # SPEC: pause_reason is empty while ACTIVE, and COMPLETED carries no reason either.
            models.CheckConstraint(
                condition=Q(status=CampaignStatus.PAUSED) | Q(pause_reason=PauseReason.NONE),
                name="campaign_reason_only_when_paused",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "pause_reason"], name="campaign_status_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.end_date is not None and self.start_date is not None and self.end_date < self.start_date:
            raise ValidationError(
                {"end_date": f"end_date {self.end_date} is before start_date {self.start_date}"}
            )


class Spend(models.Model):
    """One spend record from an integration: the audit log, never edited by jobs."""

    # Indexed by spend_campaign_date_idx, which starts with it: a second index would only
    # cost every insert another write.
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="spends", db_index=False)
    amount = CentsField()
    date = models.DateField()
    hour = models.PositiveSmallIntegerField(validators=[MaxValueValidator(23)])
    # The integration's idempotency key: a retried record with the same key is stored once
    # (spend_external_id_unique; a constraint rather than unique=True, which on PostgreSQL also
    # builds a pattern-matching index that nothing here uses). NULL, not "", is "no key": many
    # rows have none, and "" would collide under the constraint.
    external_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects: ClassVar[models.Manager["Spend"]] = models.Manager()

    class Meta:
        ordering = ["-date", "-hour", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="spend_amount_positive"),
            models.CheckConstraint(condition=Q(hour__gte=0, hour__lte=23), name="spend_hour_in_day"),
            models.UniqueConstraint(fields=["external_id"], name="spend_external_id_unique"),
        ]
        indexes = [
            models.Index(fields=["campaign", "date"], name="spend_campaign_date_idx"),
            models.Index(fields=["date"], name="spend_date_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} on {self.date} {self.hour:02d}h"


WEEKDAYS = [
    (0, "Monday"),
    (1, "Tuesday"),
    (2, "Wednesday"),
    (3, "Thursday"),
    (4, "Friday"),
    (5, "Saturday"),
    (6, "Sunday"),
]


class DaypartingSchedule(models.Model):
    """A window in which the campaign may run: `day_of_week` from `start_hour` to `end_hour`.

    0 = Monday ... 6 = Sunday (Python's `weekday()`); `end_hour` is exclusive and 24 means until
    midnight; a window across midnight is two rows.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="dayparting")
    day_of_week = models.PositiveSmallIntegerField(choices=WEEKDAYS)
    start_hour = models.PositiveSmallIntegerField(validators=[MaxValueValidator(23)])
    end_hour = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(24)])

    objects: ClassVar[models.Manager["DaypartingSchedule"]] = models.Manager()

    class Meta:
        ordering = ["campaign_id", "day_of_week", "start_hour"]
        constraints = [
            models.CheckConstraint(
                condition=Q(day_of_week__gte=0, day_of_week__lte=6), name="dayparting_day_in_week"
            ),
            models.CheckConstraint(
                condition=Q(start_hour__gte=0, start_hour__lte=23), name="dayparting_start_in_day"
            ),
            models.CheckConstraint(
                condition=Q(end_hour__gte=1, end_hour__lte=24), name="dayparting_end_in_day"
            ),
            models.CheckConstraint(
                condition=Q(start_hour__lt=F("end_hour")), name="dayparting_start_before_end"
            ),
        ]
        indexes = [
            models.Index(fields=["campaign", "day_of_week"], name="dayparting_campaign_day_idx"),
        ]

    def __str__(self) -> str:
        return f"day {self.day_of_week} {self.start_hour:02d}-{self.end_hour:02d}"

    def clean(self) -> None:
        if self.start_hour is not None and self.end_hour is not None and self.start_hour >= self.end_hour:
            raise ValidationError(
                {
                    "end_hour": (
                        f"end_hour {self.end_hour} must be after start_hour {self.start_hour} "
                        "(a window across midnight is two rows)"
                    )
                }
            )


class CampaignStatusChange(models.Model):
    """The audit trail: one row for every change of a campaign's status or pause reason."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="status_changes")
    old_status = models.CharField(max_length=16, choices=CampaignStatus.choices)
    new_status = models.CharField(max_length=16, choices=CampaignStatus.choices)
    reason = models.CharField(max_length=32, choices=PauseReason.choices, blank=True)
    # Who made the change: "user:alice", "job:enforce_dayparting", "api:<key name>", "system".
    actor = models.CharField(max_length=100)
    changed_at = models.DateTimeField(default=timezone.now)

    objects: ClassVar[models.Manager["CampaignStatusChange"]] = models.Manager()

    class Meta:
        ordering = ["-changed_at", "-id"]
        indexes = [
            models.Index(fields=["campaign", "-changed_at"], name="status_change_campaign_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.old_status} → {self.new_status} {self.reason}".strip()


# --- Integrations: API keys and outbound webhooks (issue "Spend ingestion for integrations") ------


class ApiKey(models.Model):
    """A machine credential for the ingestion API, stored hashed (see `apps.budget.api_keys`).

    The full key is `bms_<prefix>_<secret>`; only the prefix (to find the row) and the SHA-256 of
    the whole key are kept. No brands means every brand.
    """

    name = models.CharField(max_length=100, unique=True, help_text="Shows in the audit trail as api:<name>.")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    brands = models.ManyToManyField(
        Brand, blank=True, related_name="api_keys", help_text="Empty: the key may write to every brand."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects: ClassVar[models.Manager["ApiKey"]] = models.Manager()

    class Meta:
        ordering = ["name"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return self.name


class WebhookEndpoint(models.Model):
    """A URL that receives every campaign status change as signed JSON."""

    url = models.URLField(max_length=500)
    # Shared with the receiver to verify X-Budget-Signature, so it is kept in clear.
    secret = models.CharField(max_length=128)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects: ClassVar[models.Manager["WebhookEndpoint"]] = models.Manager()

    class Meta:
        ordering = ["url"]

    def __str__(self) -> str:
        return self.url


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One status change to send to one endpoint: at most one row per pair, so sent once."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    status_change = models.ForeignKey(
        CampaignStatusChange, on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    # The body as first sent; retries send the same event (null until the first attempt).
    payload = models.JSONField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # When a sender may (re)try it; a sender claims a row by moving this past its own attempt.
    next_attempt_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    objects: ClassVar[models.Manager["WebhookDelivery"]] = models.Manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "status_change"], name="webhook_delivery_once_per_endpoint"
            ),
            models.CheckConstraint(
                condition=Q(state__in=DeliveryState.values), name="webhook_delivery_state_known"
            ),
        ]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="webhook_delivery_due_idx"),
        ]

    def __str__(self) -> str:
        return f"change {self.status_change_id} → {self.endpoint_id} ({self.state})"


class SpendPeriod(models.TextChoices):
    DAY = "D", "Day"
    MONTH = "M", "Month"


class SpendTotal(models.Model):
    """A campaign's spend in one UTC day or month: the sum of its Spend rows, kept by the check.

    The periodic check adds only the Spend rows written since its last run (see SpendTally), so
    reconciling reads one total per campaign instead of rescanning the month's rows. Only the
    current day and month are kept.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    period = models.CharField(max_length=1, choices=SpendPeriod.choices)
    starts_on = models.DateField()
    amount = CentsField(default=ZERO_CENTS)

    objects: ClassVar[models.Manager["SpendTotal"]] = models.Manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "period", "starts_on"], name="spend_total_unique"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="spend_total_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.period} {self.starts_on}: {self.amount}"


class SpendTally(models.Model):
    """One row: the SpendTotal sums include every Spend row with an id up to `last_spend_id`.

    Exact because every writer of Spend rows holds a brand lock, and the check takes the whole
    brand table first: when it reads MAX(id), no spend transaction is still in flight.
    """

    last_spend_id = models.BigIntegerField(default=0)

    objects: ClassVar[models.Manager["SpendTally"]] = models.Manager()

    def __str__(self) -> str:
        return f"spend totals up to #{self.last_spend_id}"

"""The stored names of campaign statuses and pause reasons (SPEC, "Data")."""

from django.db import models


class CampaignStatus(models.TextChoices):
    ACTIVE = "ACTIVE", "Active"
    PAUSED = "PAUSED", "Paused"
    COMPLETED = "COMPLETED", "Completed"


class PauseReason(models.TextChoices):
    NONE = "", "—"
    MANUAL = "MANUAL", "Paused by a person"
    BRAND_INACTIVE = "BRAND_INACTIVE", "Brand is inactive"
    NOT_STARTED = "NOT_STARTED", "Start date not reached"
    BRAND_MONTHLY_BUDGET = "BRAND_MONTHLY_BUDGET", "Brand monthly budget reached"
    BRAND_DAILY_BUDGET = "BRAND_DAILY_BUDGET", "Brand daily budget reached"
    MONTHLY_BUDGET = "MONTHLY_BUDGET", "Monthly budget reached"
    DAILY_BUDGET = "DAILY_BUDGET", "Daily budget reached"
    DAYPARTING = "DAYPARTING", "Outside its dayparting hours"

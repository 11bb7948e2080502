"""The one source of "now": every period is a UTC day or month (SPEC, "Time and money").

Everything takes time from `django.utils.timezone.now()` so that freezegun moves all of it.
"""

from datetime import date, datetime

from django.utils import timezone


def utc_now() -> datetime:
    return timezone.now()


def utc_today() -> date:
    return utc_now().date()


def month_start(day: date) -> date:
    return day.replace(day=1)


def utc_month_start() -> date:
    return month_start(utc_today())

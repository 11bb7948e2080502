"""Project package; exports the Celery app so that `celery -A budget_system` finds it."""

from budget_system.celery import app as celery_app

__all__ = ["celery_app"]

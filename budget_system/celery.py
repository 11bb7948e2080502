"""The Celery app: configured from Django settings (CELERY_ namespace), tasks autodiscovered."""

import logging
import os

from celery import Celery
from celery.beat import Service
from celery.signals import after_setup_logger, beat_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "budget_system.settings")

app = Celery("budget_system")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger("celery.beat")


@after_setup_logger.connect
def log_each_line_once(**_kwargs: object) -> None:
    """In worker and beat, Celery's root handler prints every record, in its format.

    Django's LOGGING also gives `apps.budget` a console handler (for commands and the web
    process); left in place, each of the jobs' lines would be printed twice.
    """
    logging.getLogger("apps.budget").handlers.clear()


@beat_init.connect
def log_beat_schedules(sender: Service, **_kwargs: object) -> None:
    """Start beat's log with the schedules it will run, as stored after its start-up upsert."""
    # Creating the scheduler runs DatabaseScheduler.setup_schedule: CELERY_BEAT_SCHEDULE is
    # upserted into the database before the rows are read below.
    scheduler = sender.scheduler
    # Models can be imported only once Django is set up, which beat has done by now;
    # django-celery-beat ships no type information.
    from django_celery_beat.models import PeriodicTask  # noqa: PLC0415

    logger.info("beat: %s, schedules in the database (UTC):", type(scheduler).__name__)
    for task in PeriodicTask.objects.order_by("name"):
        if task.enabled:
            logger.info("beat schedule: %s -> %s", task, task.task)
        else:
            logger.warning("beat schedule DISABLED (in the admin): %s -> %s", task, task.task)

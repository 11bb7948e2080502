"""`python manage.py reset_budgets [--daily] [--monthly] [--dry-run]`: the jobs' reset, by hand."""

from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, transaction

from apps.budget import services
from apps.budget.models import CampaignStatusChange

ACTOR = "command:reset_budgets"
# Campaigns listed by name at the default verbosity; -v 2 lists all of them.
LISTED_CHANGES = 50


class DryRunRollback(Exception):
    """Raised inside the transaction to undo a dry run after reporting it."""


class Command(BaseCommand):
    help = (
        "Roll daily and/or monthly spend aggregates over to the current UTC day/month and apply the "
        "status rule to every campaign, as the midnight jobs do. Catches up a missed reset; "
        "changes nothing when the aggregates are already current. Both periods when neither flag "
        "is given."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--daily", action="store_true", help="Roll over the daily aggregates.")
        parser.add_argument("--monthly", action="store_true", help="Roll over the monthly aggregates.")
        parser.add_argument("--dry-run", action="store_true", help="Report what would change, then undo it.")

    def handle(self, *args: Any, **options: Any) -> None:
        daily, monthly = options["daily"], options["monthly"]
        if not daily and not monthly:
            daily = monthly = True
        verbosity: int = options["verbosity"]
        try:
            with transaction.atomic():
                report = services.reset_budgets(daily=daily, monthly=monthly, actor=ACTOR)
                self._print_report(report, verbosity=verbosity)
                if options["dry_run"]:
                    raise DryRunRollback
        except DryRunRollback:
            self.stdout.write(self.style.WARNING("Dry run: nothing was changed."))
        except (DatabaseError, ValidationError) as error:
            raise CommandError(f"reset_budgets failed, nothing was changed: {error}") from error

    def _print_report(self, report: services.JobReport, *, verbosity: int) -> None:
        rolled = report.rolled
        self.stdout.write(f"Budgets for {report.today.isoformat()} (UTC)")
        self.stdout.write(
            f"Rolled over daily aggregates: {rolled.brands_daily} brands, {rolled.campaigns_daily} campaigns"
        )
        self.stdout.write(
            f"Rolled over monthly aggregates: {rolled.brands_monthly} brands, "
            f"{rolled.campaigns_monthly} campaigns"
        )
        changes = report.changes
        if not changes.total:
            self.stdout.write(self.style.SUCCESS("No campaign changed status."))
            return
        self.stdout.write(self.style.SUCCESS(f"{changes.total} campaigns changed status:"))
        for transition in changes.transitions:
            self.stdout.write(f"  {transition.label()}: {transition.count}")
        if verbosity < 1:
            return
        limit = None if verbosity >= 2 else LISTED_CHANGES
        rows = (
            CampaignStatusChange.objects.filter(actor=changes.actor, changed_at=changes.changed_at)
            .select_related("campaign__brand")
            .order_by("campaign_id")
        )
        for change in rows[:limit] if limit is not None else rows:
            campaign = change.campaign
            why = f" ({change.reason})" if change.reason else ""
            self.stdout.write(
                f"  #{campaign.pk} {campaign.brand.name} / {campaign.name}: "
                f"{change.old_status} -> {change.new_status}{why}"
            )
        if limit is not None and changes.total > limit:
            self.stdout.write(f"  ... and {changes.total - limit} more (use -v 2 to list all)")

"""`python manage.py create_api_key NAME [--brand ID ...]`: an integration's key, printed once.

The same as adding a key in the admin, for scripts and first setup. Only the key's hash is stored:
the printed key cannot be shown again (make a new one if it is lost, and revoke the old one in
the admin).
"""

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.budget import api_keys
from apps.budget.models import Brand


class Command(BaseCommand):
    help = "Create an API key for the ingestion API and print it once (limited to --brand ids if given)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="the integration's name; its writes show as api:<name>")
        parser.add_argument(
            "--brand",
            type=int,
            action="append",
            default=[],
            dest="brands",
            help="a brand id the key may write to (repeat for several; none: every brand)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        wanted: list[int] = options["brands"]
        brands = list(Brand.objects.filter(pk__in=wanted))
        missing = sorted(set(wanted) - {brand.pk for brand in brands})
        if missing:
            raise CommandError(f"no brand with id {', '.join(map(str, missing))}")
        try:
            api_key, raw_key = api_keys.create_api_key(name=options["name"], brands=brands)
        except ValidationError as error:
            raise CommandError(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())
            ) from error
        scope = ", ".join(brand.name for brand in brands) or "every brand"
        if options["verbosity"] >= 1:
            self.stderr.write(f"API key {api_key.name!r} for {scope}. Copy it now, it is not shown again:")
        # The key alone on stdout, so that a script can capture it: KEY=$(manage.py create_api_key x)
        self.stdout.write(raw_key)

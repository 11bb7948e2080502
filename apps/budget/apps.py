from django.apps import AppConfig
from django.db.models.signals import post_migrate


class BudgetConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.budget"
    label = "budget"
    verbose_name = "Budgets"

    def ready(self) -> None:
        # The integrations' admin lives beside admin.py, which another module owns.
        from apps.budget import (  # noqa: PLC0415 - they import models, which are not ready before now
            admin_integrations,  # noqa: F401 - registers its ModelAdmins
            spend_sql,
        )

        # record_spend's one-statement function follows the rule of the code that migrated.
        post_migrate.connect(spend_sql.create_function, sender=self)

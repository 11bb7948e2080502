from django.apps import AppConfig


class BudgetConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "apps.budget"
    label = "budget"
    verbose_name = "Budgets"

    def ready(self) -> None:
        # The integrations' admin lives beside admin.py, which another module owns.
        from apps.budget import admin_integrations  # noqa: F401, PLC0415 - registers its ModelAdmins

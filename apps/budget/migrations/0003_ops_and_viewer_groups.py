"""The two roles of the admin, as groups: "Ops" runs the business, "Viewer" only looks.

Ops may add, change and view brands, campaigns and dayparting windows (and delete a dayparting
window, which editing a schedule needs), and only view spend rows and the status audit trail.
Viewer may only view those five models. Neither may delete a brand or a campaign.

Permissions are created by a post_migrate signal, after every migration has run, so on a fresh
database they do not exist yet here: `create_permissions` makes them first (the known pattern).
"""

from django.apps import apps as global_apps
from django.apps.registry import Apps
from django.contrib.auth.management import create_permissions
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

ROLES: dict[str, dict[str, tuple[str, ...]]] = {
    "Ops": {
        "brand": ("add", "change", "view"),
        "campaign": ("add", "change", "view"),
        "daypartingschedule": ("add", "change", "delete", "view"),
        "spend": ("view",),
        "campaignstatuschange": ("view",),
    },
    "Viewer": {
        "brand": ("view",),
        "campaign": ("view",),
        "daypartingschedule": ("view",),
        "spend": ("view",),
        "campaignstatuschange": ("view",),
    },
}


def create_roles(apps: Apps, schema_editor: BaseDatabaseSchemaEditor | None) -> None:
    """Create (or bring up to date) the groups with exactly the permissions above."""
    using = schema_editor.connection.alias if schema_editor is not None else "default"
    # The label only: create_permissions reads the models from `apps`, the migration's state.
    create_permissions(global_apps.get_app_config("budget"), verbosity=0, using=using, apps=apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, grants in ROLES.items():
        codenames = [f"{action}_{model}" for model, actions in grants.items() for action in actions]
        permissions = list(
            Permission.objects.using(using).filter(content_type__app_label="budget", codename__in=codenames)
        )
        missing = set(codenames) - {permission.codename for permission in permissions}
        if missing:
            raise RuntimeError(f"permissions missing for group {name}: {sorted(missing)}")
        group, _created = Group.objects.using(using).get_or_create(name=name)
        group.permissions.set(permissions)


def delete_roles(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("budget", "0002_integrations"),
    ]

    operations = [migrations.RunPython(create_roles, delete_roles)]

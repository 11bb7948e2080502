"""`python manage.py create_local_admin`: a superuser for a local run, its password shown once."""

import secrets
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Create the local admin login (user 'admin' with a random password) unless a superuser "
        "exists. The password is printed once and kept in var/admin-login.txt (mode 600). "
        "Refused when DEBUG is off: production superusers are made with createsuperuser."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("create_local_admin is for local runs only (DEBUG is off)")
        login_file = Path(settings.VAR_DIR) / "admin-login.txt"
        user_model = get_user_model()
        if user_model.objects.filter(is_superuser=True).exists():
            where = f" (password in {login_file})" if login_file.exists() else ""
            self.stdout.write(f"Admin login exists{where}.")
            return
        password = secrets.token_urlsafe(12)
        user_model.objects.create_superuser(username=options["username"], email="", password=password)
        login_file.parent.mkdir(parents=True, exist_ok=True)
        login_file.touch(mode=0o600)
        login_file.write_text(f"username: {options['username']}\npassword: {password}\n")
        self.stdout.write(self.style.SUCCESS("Created the local admin login (shown once):"))
        self.stdout.write(f"  username: {options['username']}\n  password: {password}")
        self.stdout.write(f"  (also kept in {login_file})")

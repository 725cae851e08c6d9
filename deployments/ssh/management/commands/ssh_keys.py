"""`python manage.py ssh_keys add|list|remove`: operators manage users' SSH keys from a shell."""

from __future__ import annotations

import sys

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from deployments.ssh.models import SSHKey
from deployments.ssh.services import ssh_key_add, ssh_key_remove

MAX_KEY_FILE = 64 * 1024  # an authorized_keys line is a few hundred bytes; refuse anything huge


class Command(BaseCommand):
    help = "Add, list or remove users' SSH public keys (the same rules as the profile page; each change is audited)."

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="action", required=True, metavar="{add,list,remove}")
        add = commands.add_parser("add", help="Register a public key for a user.")
        add.add_argument("--user", required=True, help="The Diploi user name.")
        add.add_argument("--key-file", required=True, help="A .pub file (one authorized_keys line); - reads stdin.")
        add.add_argument("--name", default="", help="The key's name (default: its comment).")
        listing = commands.add_parser("list", help="List keys, of one user or of everyone.")
        listing.add_argument("--user", help="Only this user's keys.")
        remove = commands.add_parser("remove", help="Remove a user's key; its open sessions are closed.")
        remove.add_argument("--user", required=True, help="The Diploi user name.")
        remove.add_argument("fingerprint", help="SHA256:… as `list` shows it.")

    def handle(self, *args, action: str, **options):
        getattr(self, f"_{action}")(**options)

    def _user(self, username: str):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"There is no user “{username}”.")
        return user

    def _read(self, path: str) -> str:
        try:
            if path == "-":
                text = sys.stdin.read(MAX_KEY_FILE + 1)
            else:
                with open(path, encoding="utf-8") as file:
                    text = file.read(MAX_KEY_FILE + 1)
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror}.") from None
        except UnicodeDecodeError:
            raise CommandError(f"{path} is not text: give the public key (.pub) file.") from None
        if len(text) > MAX_KEY_FILE:
            raise CommandError(f"{path} is larger than {MAX_KEY_FILE // 1024} KiB: give one public key (.pub) file.")
        return text

    def _add(self, *, user: str, key_file: str, name: str, **_):
        owner = self._user(user)
        text = self._read(key_file)
        try:
            key = ssh_key_add(user=owner, name=name, public_key=text, actor=None)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stdout.write(f"Added “{key.name}” for {owner.get_username()}: {key.key_type} {key.bits} {key.fingerprint}")

    def _list(self, *, user: str | None, **_):
        keys = SSHKey.objects.select_related("user").order_by("user__username", "name")
        if user is not None:
            keys = keys.filter(user=self._user(user))
        for key in keys:
            used = key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "never"
            self.stdout.write(
                "\t".join(
                    (
                        key.user.get_username(),
                        key.fingerprint,
                        f"{key.key_type} {key.bits}",
                        key.name,
                        f"added {key.added_at.isoformat(timespec='seconds')}",
                        f"last used {used}",
                    )
                )
            )

    def _remove(self, *, user: str, fingerprint: str, **_):
        owner = self._user(user)
        try:
            ssh_key_remove(user=owner, fingerprint=fingerprint, actor=None)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stdout.write(f"Removed {fingerprint} of {owner.get_username()}.")

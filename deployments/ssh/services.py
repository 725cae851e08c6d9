"""Adding and removing users' SSH keys: keyword-only, atomic, each writing an audit row."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from deployments.models import record_activity
from deployments.ssh.keys import KeyRefused, PublicKey, parse_public_key
from deployments.ssh.models import SSHKey
from deployments.ssh.sessions import sessions_close_for_key

NAME_MAX = SSHKey._meta.get_field("name").max_length


def ssh_key_problems(*, user, name: str, public_key: str) -> tuple[PublicKey | None, str, dict[str, list[str]]]:
    """Check a key to add: (the parsed key, the name to use, problems per field). No writes."""
    problems: dict[str, list[str]] = {}
    name = (name or "").strip()
    parsed = None
    try:
        parsed = parse_public_key(public_key or "")
    except KeyRefused as refused:
        problems["public_key"] = [f"{str(refused)[0].upper()}{str(refused)[1:]}"]
    if not name and parsed is not None:
        name = parsed.comment[:NAME_MAX].strip()
    if not name:
        problems["name"] = ["Give the key a name (for example the computer it is on)."]
    elif len(name) > NAME_MAX:
        problems["name"] = [f"Keep the name to {NAME_MAX} characters (it has {len(name)})."]
    elif user is not None and SSHKey.objects.filter(user=user, name=name).exists():
        problems["name"] = [f"{user.get_username()} already has a key called “{name}”."]
    if parsed is not None and SSHKey.objects.filter(fingerprint=parsed.fingerprint).exists():
        problems["public_key"] = [
            f"This key ({parsed.fingerprint}) is already registered. A key belongs to one user: "
            "make a new one for this account (ssh-keygen -t ed25519)."
        ]
    return parsed, name, problems


@transaction.atomic
def ssh_key_add(*, user, name: str, public_key: str, actor) -> SSHKey:
    """Register ``public_key`` (one authorized_keys line) for ``user`` under ``name``
    (empty: the key's comment).

    Raises ValidationError (per field: ``name``, ``public_key``) saying why not;
    nothing is written then. A key already registered (to anyone) is refused:
    one key belongs to one user, which the database's unique fingerprint enforces.
    """
    parsed, name, problems = ssh_key_problems(user=user, name=name, public_key=public_key)
    if problems:
        raise ValidationError(problems)
    try:
        with transaction.atomic():
            key = SSHKey.objects.create(
                user=user,
                name=name,
                public_key=parsed.public_key,
                key_type=parsed.key_type,
                bits=parsed.bits,
                fingerprint=parsed.fingerprint,
            )
    except IntegrityError:
        # Someone registered the same key (or name) between the checks and the insert.
        raise ValidationError({"public_key": [f"This key ({parsed.fingerprint}) is already registered."]}) from None
    record_activity(
        action="ssh_key.added",
        message=f"SSH key “{name}” ({parsed.key_type}, {parsed.fingerprint}) added for {user.get_username()}",
        actor=actor,
        user=user.get_username(),
        fingerprint=parsed.fingerprint,
    )
    return key


@transaction.atomic
def ssh_key_remove(*, user, fingerprint: str, actor) -> None:
    """Remove ``user``'s key with that fingerprint and ask the gateway to end the sessions it opened.

    Raises ValidationError when the user has no such key.
    """
    key = SSHKey.objects.select_for_update().filter(user=user, fingerprint=fingerprint.strip()).first()
    if key is None:
        raise ValidationError(f"{user.get_username()} has no SSH key {fingerprint.strip()}.")
    key.delete()
    closing = sessions_close_for_key(user_id=user.pk, fingerprint=key.fingerprint, reason="your key was removed")
    record_activity(
        action="ssh_key.removed",
        message=f"SSH key “{key.name}” ({key.fingerprint}) of {user.get_username()} removed"
        + (f"; {closing} open session(s) closing" if closing else ""),
        actor=actor,
        user=user.get_username(),
        fingerprint=key.fingerprint,
    )

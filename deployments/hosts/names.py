"""Host names as Diploi stores and compares them: pure functions, no database.

Every host a deployment is reachable at (the template's public hosts and the
custom domains users add) goes through `normalize_host` before it is checked
or stored, so a trailing dot, upper case or a Unicode lookalike can never make
one host look like two.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import idna
from django.conf import settings

HOST_MAX = 253
LABEL_MAX = 63
# Explicit ASCII classes, never IGNORECASE: with it, [a-z] also matches "ſ" and the Kelvin sign.
_ASCII_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class HostError(ValueError):
    """A host name that cannot be used, with the reason in words a user understands."""


def normalize_host(value: str) -> str:
    """``value`` as the ASCII, lower-case host it stands for, without a trailing dot.

    Internationalised names become their ``xn--`` form (IDNA 2008), so what is
    stored, compared and put in an Ingress is always plain ASCII. Raises
    `HostError` for anything that is not a fully qualified host name.
    """
    text = value.strip()
    if text.endswith("."):
        text = text[:-1]
    if not text:
        raise HostError("is empty")
    labels = text.lower().split(".")
    ascii_labels = []
    for label in labels:
        if not label:
            raise HostError("has an empty part (two dots in a row, or a leading dot)")
        if label.isascii():
            ascii_labels.append(label)
            continue
        try:
            ascii_labels.append(idna.alabel(label).decode("ascii"))
        except idna.IDNAError:
            raise HostError(f"has a part “{label}” that is not a valid internationalised name") from None
    for label in ascii_labels:
        if len(label) > LABEL_MAX:
            raise HostError(f"has a part longer than {LABEL_MAX} characters")
        if not _ASCII_LABEL.match(label):
            raise HostError(f"has an invalid part “{label}” (letters, digits and '-', not at either end)")
    if len(ascii_labels) < 2:
        raise HostError("must have at least two parts, like app.example.com")
    if ascii_labels[-1].isdigit():
        raise HostError("must end in a top-level domain, not a number")
    host = ".".join(ascii_labels)
    if len(host) > HOST_MAX:
        raise HostError(f"is longer than {HOST_MAX} characters")
    return host


def _plain_host(entry: str) -> str | None:
    """A configured host (ALLOWED_HOSTS style) as a normalized host, or None for patterns and addresses."""
    entry = entry.strip().lstrip(".")
    if not entry or "*" in entry or entry.startswith("["):
        return None
    entry = entry.rsplit(":", 1)[0] if entry.count(":") == 1 else entry
    try:
        return normalize_host(entry)
    except HostError:
        return None


def reserved_hosts() -> frozenset[str]:
    """Hosts no deployment may take: the platform's own.

    The base domain itself and ``www.`` under it, the edge (what custom domains
    point at), the SSH gateway, the dashboard's own hosts (``ALLOWED_HOSTS``)
    and any listed in ``RESERVED_HOSTS``.
    """
    base = settings.BASE_DOMAIN.strip().rstrip(".").lower()
    entries: Iterable[str] = (
        base,
        f"www.{base}",
        settings.EDGE_HOST,
        settings.SSH_HOST,
        *settings.ALLOWED_HOSTS,
        *settings.RESERVED_HOSTS,
    )
    return frozenset(host for host in map(_plain_host, entries) if host)


def is_reserved(host: str) -> bool:
    return host in reserved_hosts()


def is_under_base_domain(host: str) -> bool:
    base = settings.BASE_DOMAIN.strip().rstrip(".").lower()
    return host == base or host.endswith("." + base)

"""Names that reach Kubernetes: DNS-1123 labels, namespaces and repositories (hosts: `deployments.hosts.names`)."""

import re
import secrets

from django.core.exceptions import ValidationError

DNS_LABEL_MAX = 63
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def dns_label_error(value: str) -> str | None:
    """Why ``value`` is not a DNS-1123 label, in words a user understands, or None."""
    if not value:
        return "must not be empty"
    if len(value) > DNS_LABEL_MAX:
        return f"must be at most {DNS_LABEL_MAX} characters (it has {len(value)})"
    if value != value.lower():
        return "must be lowercase"
    if not _DNS_LABEL.match(value):
        if value[0] == "-" or value[-1] == "-":
            return "must start and end with a letter or digit"
        return "may contain only lowercase letters, digits and '-'"
    return None


def dns_label_validator(value: str) -> None:
    error = dns_label_error(value)
    if error:
        raise ValidationError(f"“{value}” is not a valid name: it {error}.", code="dns_label")


def slugify_label(text: str, max_length: int) -> str:
    """Lowercase ``text`` into a DNS-label fragment of at most ``max_length`` characters."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return cleaned[:max_length].strip("-")


def namespace_for(project_slug: str, deployment_name: str) -> str:
    """A unique namespace name: ``<project>-<deployment>-<random>``, a DNS label of at most 63 characters.

    The random suffix keeps a re-created deployment clear of a namespace of the
    same name that is still terminating.
    """
    suffix = secrets.token_hex(3)
    project = slugify_label(project_slug, 20) or "p"
    deployment = slugify_label(deployment_name, DNS_LABEL_MAX - len(project) - len(suffix) - 2) or "d"
    return f"{project}-{deployment}-{suffix}"


_REPOSITORY = re.compile(r"^(https://|ssh://|git://|git@[\w.-]+:)\S+$")
# scheme://userinfo@ in a URL, wherever it appears in a text.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
REDACTED = "***"


def _has_credentials(value: str) -> bool:
    """A password anywhere, or any user name except in ssh:// (``ssh://git@host/…`` names the SSH user)."""
    match = _USERINFO.match(value)
    if not match:
        return False
    return ":" in match.group("userinfo") or not match.group("scheme").lower().startswith("ssh")


def repository_error(value: str) -> str | None:
    """Why ``value`` is not a Git repository address a development deployment can clone, or None."""
    if value and not _REPOSITORY.match(value):
        return "must be an https://, ssh:// or git@host: address of a Git repository"
    if value and _has_credentials(value):
        return (
            "must not contain credentials (user:token@): they would be shown to everyone who can see the project; "
            "give Diploi access to a private repository through the project's credentials instead"
        )
    return None


def redact_credentials(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced by ***: for what viewers and logs see."""

    def redact(match: re.Match) -> str:
        if _has_credentials(match.group(0)):
            return f"{match.group('scheme')}{REDACTED}@"
        return match.group(0)

    return _USERINFO.sub(redact, text) if "@" in text else text


def repository_validator(value: str) -> None:
    error = repository_error(value)
    if error:
        raise ValidationError(f"“{value}” {error}.", code="repository")

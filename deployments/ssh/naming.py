"""SSH user names: ``component.deployment.project``, optionally ``replica.component.deployment.project``.

Unambiguous by construction: each part is a DNS label (no dots), project slugs
are unique across the installation and deployment names unique per project, so
a name maps to at most one live deployment and one component, and parsing gives
back exactly the parts it was made from. Most specific first, as in DNS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MAX_LENGTH = 255


@dataclass(frozen=True)
class SSHName:
    component: str
    deployment: str
    project: str
    replica: str | None = None  # a StatefulSet ordinal ("0") or the last part of a pod's name

    def __str__(self) -> str:
        parts = [self.component, self.deployment, self.project]
        return ".".join([self.replica, *parts] if self.replica else parts)


def ssh_user_for(*, component: str, deployment: str, project: str, replica: str | None = None) -> str:
    """The SSH user name of a component of a deployment (of a replica, when given)."""
    name = SSHName(component=component, deployment=deployment, project=project, replica=replica)
    if parse_ssh_user(str(name)) != name:
        raise ValueError(f"cannot name {name!r}: every part must be a DNS label")
    return str(name)


def parse_ssh_user(text: str) -> SSHName | None:
    """The parts of an SSH user name, or None when it is not one Diploi hands out (pure, no database)."""
    if not text or len(text) > MAX_LENGTH:
        return None
    parts = text.split(".")
    if len(parts) not in (3, 4) or not all(_LABEL.match(part) and len(part) <= 63 for part in parts):
        return None
    replica = parts.pop(0) if len(parts) == 4 else None
    component, deployment, project = parts
    return SSHName(component=component, deployment=deployment, project=project, replica=replica)


def replica_of(pod_name: str) -> str | None:
    """What names ``pod_name`` as a replica: the last part of its name (a StatefulSet's ordinal,
    a Deployment pod's random suffix), or None if that is not a DNS label."""
    last = pod_name.rsplit("-", 1)[-1] if "-" in pod_name else ""
    return last if _LABEL.match(last) and len(last) <= 63 else None

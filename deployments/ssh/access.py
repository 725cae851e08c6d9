"""May this key open this SSH user name? The gateway's one question, answered from the database.

`authorize` returns a `Target` (where the session goes) or a `Refusal` whose
message the gateway prints on stderr. Whoever is not a member of the
deployment's team, or names nothing that exists, hears exactly what a wrong
key hears: nothing tells an outsider whether a deployment exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from deployments.cluster import labels
from deployments.models import Deployment, DeploymentState, Membership, Role
from deployments.ssh.keys import fingerprint_of
from deployments.ssh.models import SSHKey
from deployments.ssh.naming import parse_ssh_user

NO_KEY = "no key of yours is registered"


@dataclass(frozen=True)
class Target:
    user_id: int
    username: str
    key_fingerprint: str
    deployment_id: int
    component: str
    namespace: str
    pod_selector: dict[str, str]  # labels selecting the component's pods
    container: str
    workdir: str  # where the shell starts (the component's code path in development), or ""
    replica: str | None  # a replica the user named (a StatefulSet ordinal or a pod name's last part)


@dataclass(frozen=True)
class Refusal:
    message: str  # for the user's stderr


def key_is_registered(public_key: str) -> bool:
    """Whether an OpenSSH public key (``type base64[ comment]``) belongs to an active user."""
    fingerprint = fingerprint_of(public_key)
    return fingerprint is not None and _key(fingerprint) is not None


def _key(fingerprint: str) -> SSHKey | None:
    return SSHKey.objects.select_related("user").filter(fingerprint=fingerprint, user__is_active=True).first()


def authorize(*, ssh_user: str, public_key: str) -> Target | Refusal:
    """Decide whether the holder of ``public_key`` may open ``ssh_user``. Reads only: the key's use is
    recorded with the session row (`sessions.session_open`), off the path of the connection's start.

    Rules, in order: the key is registered to an active user; the name is one
    Diploi hands out for a live deployment; the user is a developer or admin of
    its team; the template allows SSH into that component in the deployment's
    stage; the deployment is enabled, applied and not being deleted.
    Sync (the gateway runs it in a thread); safe to call any number of times.
    """
    fingerprint = fingerprint_of(public_key)
    key = _key(fingerprint) if fingerprint else None
    if key is None:
        return Refusal(NO_KEY)
    name = parse_ssh_user(ssh_user)
    deployment = None
    if name is not None:
        deployment = (
            Deployment.objects.live()
            .select_related("project__team", "template_version")
            .filter(project__slug=name.project, name=name.deployment)
            .first()
        )
    membership = None
    if deployment is not None:
        membership = Membership.objects.filter(user=key.user, team_id=deployment.project.team_id).first()
    if membership is None:
        return Refusal(NO_KEY)
    if not membership.allows(Role.DEVELOPER):
        return Refusal(f"you are a {membership.role} in team {deployment.project.team.name}")
    spec = deployment.spec
    if spec.ssh_rule(name.component, deployment.stage) is None:
        return Refusal(f"the {deployment.stage} stage of this template allows no SSH into {name.component}")
    if refusal := _not_running(deployment):
        return refusal
    component = spec.component(name.component)
    return Target(
        user_id=key.user_id,
        username=key.user.get_username(),
        key_fingerprint=key.fingerprint,
        deployment_id=deployment.pk,
        component=component.id,
        namespace=deployment.namespace,
        pod_selector=labels.service_selector(deployment.pk, component.id),
        container=component.id,
        workdir=component.code_path if deployment.mode == "source" else "",
        replica=name.replica,
    )


def _not_running(deployment: Deployment) -> Refusal | None:
    if deployment.state == DeploymentState.DELETING:
        return Refusal("the deployment is being deleted")
    if not deployment.enabled:
        return Refusal("the deployment is disabled")
    if deployment.applied_generation == 0:
        return Refusal("the deployment is still being created")
    return None

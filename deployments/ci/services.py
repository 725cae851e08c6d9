"""Creating, rotating and using a project's build secrets. Views, the API and the webhook call these.

Each writer is keyword-only and atomic and writes an audit row; the audit row never holds the
secret. A new token or webhook secret is returned once, to be shown once: Diploi cannot show it again.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from deployments.builds.commits import commit_subject
from deployments.builds.models import Build
from deployments.builds.services import build_started, buildable_components, builds_request, runner_for
from deployments.ci.models import BuildToken, DeployKey, RepositoryToken, WebhookSecret
from deployments.ci.sealing import seal, signature_matches, token_digest, unseal
from deployments.cluster import git
from deployments.dispatch import send_on_commit
from deployments.models import BuildRunner, Deployment, DeploymentState, Operation, Project, record_activity

TOKEN_PREFIX = "dpl_"  # noqa: S105 - what every build token starts with, so a leaked one is recognizable
RECONCILING_STATES = (DeploymentState.CREATING, DeploymentState.RUNNING, DeploymentState.RESTARTING)
LIVE_STATES = (*RECONCILING_STATES, DeploymentState.FAILED)


def _actor(actor):
    return actor if actor is not None and actor.is_authenticated else None


# ----------------------------------------------------------------------------- build token


@transaction.atomic
def build_token_rotate(*, project: Project, actor) -> str:
    """Make a new build token for ``project``, replacing (and so revoking) any older one. Returns the
    token: the only time it exists in clear. Not idempotent: each call revokes the previous token."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    replaced = BuildToken.objects.filter(project=project).delete()[0] > 0
    BuildToken.objects.create(project=project, digest=token_digest(token), hint=token[:10], created_by=_actor(actor))
    record_activity(
        action="ci.build_token_rotated" if replaced else "ci.build_token_created",
        message="Build token rotated: the previous one no longer works" if replaced else "Build token created",
        actor=actor,
        project=project,
    )
    return token


@transaction.atomic
def build_token_revoke(*, project: Project, actor) -> None:
    """Revoke ``project``'s build token. Idempotent: without a token, nothing happens."""
    if BuildToken.objects.filter(project=project).delete()[0]:
        record_activity(action="ci.build_token_revoked", message="Build token revoked", actor=actor, project=project)


def project_for_build_token(token: str) -> Project | None:
    """The project whose build token ``token`` is (recording the use), or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    found = BuildToken.objects.select_related("project__team", "project__template").filter(digest=token_digest(token))
    row = found.first()
    if row is None:
        return None
    BuildToken.objects.filter(pk=row.pk).update(last_used_at=timezone.now())
    return row.project


# ----------------------------------------------------------------------------- webhook secret


@transaction.atomic
def webhook_secret_rotate(*, project: Project, actor) -> str:
    """Make a new push webhook secret for ``project`` (replacing any older one) and return it, once."""
    secret = secrets.token_urlsafe(32)
    replaced = WebhookSecret.objects.filter(project=project).delete()[0] > 0
    WebhookSecret.objects.create(project=project, sealed=seal(secret), created_by=_actor(actor))
    record_activity(
        action="ci.webhook_secret_rotated" if replaced else "ci.webhook_secret_created",
        message="Webhook secret rotated: pushes signed with the previous one are refused"
        if replaced
        else "Webhook secret created",
        actor=actor,
        project=project,
    )
    return secret


@transaction.atomic
def webhook_secret_revoke(*, project: Project, actor) -> None:
    """Remove ``project``'s webhook secret: every push is refused until a new one is made. Idempotent."""
    if WebhookSecret.objects.filter(project=project).delete()[0]:
        record_activity(
            action="ci.webhook_secret_revoked", message="Webhook secret removed", actor=actor, project=project
        )


def webhook_signature_problem(*, project: Project, body: bytes, signature: str) -> str | None:
    """Why a delivery's ``X-Hub-Signature-256`` does not prove it comes from ``project``'s webhook, or None."""
    row = WebhookSecret.objects.filter(project=project).first()
    if row is None:
        return "the project has no webhook secret"
    if not signature:
        return "the X-Hub-Signature-256 header is missing"
    if not signature_matches(unseal(row.sealed), body, signature):
        return "the signature does not match"
    WebhookSecret.objects.filter(pk=row.pk).update(last_delivery_at=timezone.now())
    return None


# ----------------------------------------------------------------------------- deploy key


def _fingerprint(public_key: str) -> str:
    blob = base64.b64decode(public_key.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


@transaction.atomic
def deploy_key_generate(*, project: Project, actor) -> DeployKey:
    """Generate an ed25519 deploy key for ``project`` (replacing any older one) and roll it out to
    every live deployment's clone steps. Not idempotent: each call makes a new key."""
    private = Ed25519PrivateKey.generate()
    private_text = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public_text = (
        private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
        + f" diploi-{project.slug}"
    )
    replaced = DeployKey.objects.filter(project=project).delete()[0] > 0
    key = DeployKey.objects.create(
        project=project,
        public_key=public_text,
        fingerprint=_fingerprint(public_text),
        sealed_private_key=seal(private_text),
        created_by=_actor(actor),
    )
    record_activity(
        action="ci.deploy_key_rotated" if replaced else "ci.deploy_key_created",
        message=f"Deploy key {key.fingerprint} {'replaced the previous one' if replaced else 'created'}",
        actor=actor,
        project=project,
    )
    _roll_out_credentials(project, actor, "Repository credentials changed")
    return key


@transaction.atomic
def deploy_key_delete(*, project: Project, actor) -> None:
    """Remove ``project``'s deploy key (and so its Secret from every deployment). Idempotent."""
    if DeployKey.objects.filter(project=project).delete()[0]:
        record_activity(action="ci.deploy_key_deleted", message="Deploy key removed", actor=actor, project=project)
        _roll_out_credentials(project, actor, "Repository credentials removed")


def deploy_key_private_text(project: Project) -> str | None:
    """The deploy key's private half in clear, for the Secret a clone step mounts; None without one."""
    row = DeployKey.objects.filter(project=project).first()
    return unseal(row.sealed_private_key) if row else None


# ----------------------------------------------------------------------------- repository token

# What a host's token looks like: printable ASCII without spaces (GitHub's ghp_/github_pat_, GitLab's
# glpat-, Bitbucket's); a newline would end what GIT_ASKPASS prints early.
_TOKEN = re.compile(r"^[\x21-\x7e]{8,1000}$")
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")


@transaction.atomic
def repository_token_set(*, project: Project, token: str, username: str, actor) -> RepositoryToken:
    """Store ``token`` (sealed) as the password clone steps give an https:// repository of
    ``project``, with ``username`` (default ``x-access-token``, which GitHub takes), replacing any
    older one, and roll it out to every live deployment's clone steps. Raises ValidationError per
    field and writes nothing on bad input. Not idempotent: each call replaces the token."""
    token, username = token.strip(), username.strip() or git.DEFAULT_HTTPS_USERNAME
    errors = {}
    if not _TOKEN.match(token):
        errors["token"] = "A token is 8 to 1000 printable characters without spaces."  # noqa: S105 - a message
    if not _USERNAME.match(username):
        errors["username"] = "A user name is up to 100 letters, digits and . _ @ + - characters."
    if errors:
        raise ValidationError(errors)
    replaced = RepositoryToken.objects.filter(project=project).delete()[0] > 0
    row = RepositoryToken.objects.create(
        project=project, username=username, sealed_token=seal(token), hint=token[:4], created_by=_actor(actor)
    )
    record_activity(
        action="ci.repository_token_replaced" if replaced else "ci.repository_token_created",
        message=f"HTTPS token {row.hint}… for {username} {'replaced the previous one' if replaced else 'stored'}",
        actor=actor,
        project=project,
    )
    _roll_out_credentials(project, actor, "Repository credentials changed")
    return row


@transaction.atomic
def repository_token_delete(*, project: Project, actor) -> None:
    """Remove ``project``'s HTTPS token (and so its Secret from every deployment). Idempotent."""
    if RepositoryToken.objects.filter(project=project).delete()[0]:
        record_activity(
            action="ci.repository_token_deleted", message="HTTPS token removed", actor=actor, project=project
        )
        _roll_out_credentials(project, actor, "Repository credentials removed")


def repository_credentials(project: Project) -> git.GitCredentials | None:
    """The project's deploy key and HTTPS token in clear, for the Secrets clone steps mount; None
    without either. Raises UnsealError when one cannot be unsealed."""
    private_key = deploy_key_private_text(project)
    token = RepositoryToken.objects.filter(project=project).first()
    if private_key is None and token is None:
        return None
    if token is None:
        return git.GitCredentials(ssh_private_key=private_key)
    return git.GitCredentials(
        ssh_private_key=private_key, https_token=unseal(token.sealed_token), https_username=token.username
    )


def _roll_out_credentials(project: Project, actor, message: str) -> None:
    """Every live development deployment of ``project`` (the ones that clone in their namespace) gets
    a new desired generation (its credentials Secret changes) and a reconcile, sent on commit. Builds
    read the key when their Job is made."""
    from deployments.tasks import reconcile_deployment

    live = Deployment.objects.filter(project=project, state__in=RECONCILING_STATES).select_related("template_version")
    cloning = Deployment.objects.filter(pk__in=[d.pk for d in live if d.mode == "source"])
    cloning.update(desired_generation=F("desired_generation") + 1)
    for deployment in cloning.select_related("project__team"):
        Operation.objects.create(
            deployment=deployment,
            kind=Operation.Kind.RECONCILE,
            requested_by=_actor(actor),
            generation=deployment.desired_generation,
            message=message,
        )
        send_on_commit(reconcile_deployment, deployment.pk)


# ----------------------------------------------------------------------------- runner


@transaction.atomic
def project_build_runner_set(*, project: Project, runner: str, actor) -> Project:
    """Choose who builds ``project``'s images ("" = the installation's default). Idempotent. Builds
    already requested keep their runner; the next ones use the new one."""
    if runner not in BuildRunner.values:
        raise ValidationError({"build_runner": f"Choose one of: {', '.join(repr(v) for v in BuildRunner.values)}."})
    if project.build_runner == runner:
        return project
    old = project.get_build_runner_display()
    project.build_runner = runner
    project.save(update_fields=["build_runner"])
    record_activity(
        action="ci.build_runner_changed",
        message=f"Builds: “{old}” → “{project.get_build_runner_display()}”",
        actor=actor,
        project=project,
    )
    return project


# ----------------------------------------------------------------------------- builds from outside


def builds_from_repository(deployment: Deployment) -> bool:
    """Whether ``deployment`` is live and runs images built from the repository."""
    return deployment.state in LIVE_STATES and bool(buildable_components(deployment))


def branch_followers(*, project: Project, branch: str) -> list[Deployment]:
    """The live deployments of ``project`` that build ``branch`` (staging and production)."""
    following = Deployment.objects.filter(project=project, branch=branch, state__in=LIVE_STATES).order_by("pk")
    return [d for d in following.select_related("project__team", "template_version") if buildable_components(d)]


def push_received(*, project: Project, branch: str, commit_sha: str, commit_message: str = "") -> list[Build]:
    """A signed push of ``commit_sha`` (its message ``commit_message``) to ``branch``: request the
    builds of every staging or production deployment following that branch. Idempotent per commit:
    a component that already has a queued, running or successful build of this commit (GitHub
    redelivers; a CI may have reported it first) is not built again."""
    requested: list[Build] = []
    for deployment in branch_followers(project=project, branch=branch):
        built = set(
            Build.objects.filter(
                deployment=deployment, commit_sha=commit_sha, state__in=(*Build.ACTIVE, Build.State.SUCCEEDED)
            ).values_list("component", flat=True)
        )
        missing = [c for c in buildable_components(deployment) if c not in built]
        if missing:
            requested += builds_request(
                deployment=deployment,
                trigger=Build.Trigger.PUSH,
                commit_sha=commit_sha,
                commit_message=commit_message,
                components=missing,
            )
    return requested


@transaction.atomic
def external_builds_start(
    *,
    deployments: list[Deployment],
    component: str,
    commit_sha: str,
    run_url: str = "",
    external_id: str = "",
    commit_message: str = "",
) -> list[Build]:
    """An external CI started building ``component`` at ``commit_sha`` (whose message the CI may tell,
    ``commit_message``) for ``deployments``: each deployment's queued or running external build of
    that commit (requested by a push webhook, say) is marked started, or a new one is requested
    first. Idempotent: reporting the same start twice returns the same builds. Raises
    ValidationError when a deployment's builds run in the cluster."""
    started, subject = [], commit_subject(commit_message)
    for deployment in deployments:
        if runner_for(deployment) != Build.Runner.EXTERNAL:
            raise ValidationError(
                f"The builds of {deployment.name} run in the cluster: set the project's builds to “External CI” "
                "on its settings page for Diploi to take a CI's reports."
            )
        build = (
            Build.objects.filter(
                deployment=deployment,
                component=component,
                commit_sha=commit_sha,
                runner=Build.Runner.EXTERNAL,
                state__in=Build.ACTIVE,
            )
            .order_by("-requested_at", "-pk")
            .first()
        )
        if build is None:
            (build,) = builds_request(
                deployment=deployment,
                trigger=Build.Trigger.API,
                commit_sha=commit_sha,
                commit_message=commit_message,
                components=[component],
            )
        elif subject and not build.commit_message:
            build.commit_message = subject
            build.save(update_fields=["commit_message"])
        started.append(build_started(build_id=build.pk, run_url=run_url, external_id=external_id))
    return started


def build_summary(build: Build) -> dict:
    """What the API and the webhook answer about a build."""
    return {
        "id": build.pk,
        "deployment": build.deployment.name,
        "deployment_id": build.deployment_id,
        "component": build.component,
        "commit": build.commit_sha,
        "state": build.state,
        "step": build.step,
        "steps": build.steps,
        "step_text": build.step_text,
        # Where to push: the image repository, tagged with the commit (what Diploi's own builder pushes).
        "image": f"{build.image}:{build.commit_sha}",
        "digest": build.digest,
        "run_url": build.run_url,
        "message": build.message,
        "runner": build.runner,
    }

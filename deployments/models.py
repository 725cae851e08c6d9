"""Teams, projects, deployments and what is recorded about them.

A `Deployment` row holds the *desired* state (what the user asked for). Saving
a change to it bumps `desired_generation` and schedules a reconcile on commit;
the worker records `applied_generation` once the cluster has it. What the
cluster *does* comes back through the watcher into `DeploymentStatus` and
`CpuSample`. `Operation` rows are what the UI shows of work in progress;
`ActivityEntry` rows are the audit log.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from deployments.cluster import status as cluster_status
from deployments.cluster.git import GitCredentials
from deployments.cluster.manifests import ClusterSettings, ManifestError, RenderTarget, public_hosts
from deployments.cluster.status import Expectation, ExpectedService, Intent
from deployments.naming import dns_label_validator, redact_credentials, repository_validator
from deployments.sizes import SIZES, DeploymentSize
from templates_catalog.spec import TemplateSpec

# ----------------------------------------------------------------------------- teams


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    DEVELOPER = "developer", "Developer"
    ADMIN = "admin", "Admin"


ROLE_RANK = {Role.VIEWER: 0, Role.DEVELOPER: 1, Role.ADMIN: 2}


class Team(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=63, unique=True, validators=[dns_label_validator])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.DEVELOPER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="unique_team_member")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"

    def allows(self, role: str) -> bool:
        """Whether this member's role is at least ``role``."""
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(role)]


# ----------------------------------------------------------------------------- projects


class BuildRunner(models.TextChoices):
    DEFAULT = "", "The installation's default"
    CLUSTER = "cluster", "In the cluster (BuildKit)"
    EXTERNAL = "external", "External CI (reports through the API)"


class Project(models.Model):
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="projects")
    name = models.CharField(max_length=100)
    # Unique across the installation, not just the team: it is a part of every public host of the project.
    slug = models.CharField(max_length=30, unique=True, validators=[dns_label_validator])
    repository = models.CharField(max_length=500, blank=True, validators=[repository_validator])
    template = models.ForeignKey("templates_catalog.Template", on_delete=models.PROTECT, related_name="projects")
    build_runner = models.CharField(
        max_length=16,
        choices=BuildRunner.choices,
        blank=True,
        default=BuildRunner.DEFAULT,
        help_text="Who builds staging and production images; empty: settings.BUILD_RUNNER.",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def effective_build_runner(self) -> str:
        """ "cluster" or "external": the project's own choice, else the installation's default."""
        return self.build_runner or settings.BUILD_RUNNER

    @property
    def repository_url(self) -> str:
        """What new deployments clone: the project's repository, else its template's starter repository."""
        spec = self.template.spec
        return self.repository or (spec.repository if spec else None) or ""

    @property
    def has_nothing_to_clone(self) -> bool:
        """Whether its template has a development (source) stage but there is no repository to clone."""
        spec = self.template.spec
        return spec is not None and "source" in spec.stages.values() and not self.repository_url


# ----------------------------------------------------------------------------- deployments


class Stage(models.TextChoices):
    DEVELOPMENT = "development", "Development"
    STAGING = "staging", "Staging"
    PRODUCTION = "production", "Production"


class DeploymentState(models.TextChoices):
    CREATING = "creating", "Creating"
    RUNNING = "running", "Running"
    RESTARTING = "restarting", "Restarting"
    DELETING = "deleting", "Deleting"
    DELETED = "deleted", "Deleted"
    FAILED = "failed", "Failed"


class Health(models.TextChoices):
    GREEN = "green", "Healthy"
    YELLOW = "yellow", "Degraded"
    RED = "red", "Failing"
    UNKNOWN = "unknown", "Unknown"
    # One of our own operations under way, nothing wrong: not "Degraded".
    PROGRESS = "progress", "In progress"
    DISABLED = "disabled", "Disabled"


class LiveDeploymentQuerySet(models.QuerySet):
    def live(self):
        return self.exclude(state=DeploymentState.DELETED)


class Deployment(models.Model):
    # Fields that make up the desired state: changing any of them means the
    # cluster must be reconciled.
    DESIRED_FIELDS = (
        "name",
        "stage",
        "branch",
        "size",
        "enabled",
        "enabled_addons",
        "env_overrides",
        "custom_domains",
        "image_overrides",
        "restart_marks",
        "generated_secrets",
        "template_version_id",
        "built_images",
    )

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="deployments")
    name = models.CharField(max_length=40, validators=[dns_label_validator])
    stage = models.CharField(max_length=16, choices=Stage.choices)
    branch = models.CharField(max_length=200, default="main")
    size = models.CharField(max_length=16, choices=[(s.key, s.label) for s in SIZES.values()], default="small")
    enabled = models.BooleanField(default=True, help_text="Disabled deployments are scaled to zero.")
    template_version = models.ForeignKey(
        "templates_catalog.TemplateVersion", on_delete=models.PROTECT, related_name="deployments"
    )
    enabled_addons = models.JSONField(default=list, blank=True)
    env_overrides = models.JSONField(default=dict, blank=True, help_text='{"component": {"NAME": "value"}}')
    custom_domains = models.JSONField(default=list, blank=True)
    image_overrides = models.JSONField(default=dict, blank=True, help_text='{"component": "image:tag"}')
    restart_marks = models.JSONField(default=dict, blank=True, help_text='{"component": "ISO time of last restart"}')
    generated_secrets = models.JSONField(default=dict, blank=True, editable=False)
    # Staging/production: the images its builds produced, pinned by digest, all from one commit
    # (`builds.services` rolls them out); a component built from the repository runs nothing without one.
    built_images = models.JSONField(
        default=dict, blank=True, editable=False, help_text='{"component": "registry/path@sha256:…"}'
    )
    built_commit = models.CharField(max_length=40, blank=True, editable=False)

    namespace = models.CharField(max_length=63, unique=True, editable=False)
    state = models.CharField(max_length=16, choices=DeploymentState.choices, default=DeploymentState.CREATING)
    desired_generation = models.PositiveIntegerField(default=0, editable=False)
    applied_generation = models.PositiveIntegerField(default=0, editable=False)
    # A short lease so one worker at a time acts on the cluster for a deployment.
    lease_owner = models.CharField(max_length=64, blank=True, editable=False)
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    # The desired generation whose apply failed permanently (the API server refused it), and why:
    # nothing retries it until the desired state changes (a new generation) or someone asks to retry.
    failed_generation = models.PositiveIntegerField(null=True, blank=True, editable=False)
    failure_reason = models.TextField(blank=True, editable=False)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = LiveDeploymentQuerySet.as_manager()

    class Meta:
        ordering = ["project", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "name"],
                condition=~Q(state="deleted"),
                name="unique_live_deployment_name",
            )
        ]

    def __str__(self) -> str:
        return f"{self.project.slug}/{self.name}"

    def save(self, *args, **kwargs):
        """Save; when the desired state changed, bump the generation and reconcile on commit.

        No cluster I/O here: the reconcile task is enqueued once the
        transaction commits (never for a deleted or deleting deployment).
        """
        update_fields = kwargs.get("update_fields")
        touches_desired = update_fields is None or bool(set(update_fields) & set(self.DESIRED_FIELDS))
        changed = self._state.adding or self._desired_snapshot() != getattr(self, "_loaded_desired", None)
        reconcile = (
            touches_desired and changed and self.state not in (DeploymentState.DELETING, DeploymentState.DELETED)
        )
        if reconcile:
            self.desired_generation += 1
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "desired_generation", "updated_at"}
        super().save(*args, **kwargs)
        self._loaded_desired = self._desired_snapshot()
        if reconcile:
            from deployments.dispatch import send_on_commit
            from deployments.tasks import reconcile_deployment

            send_on_commit(reconcile_deployment, self.pk)

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._loaded_desired = instance._desired_snapshot()
        return instance

    def _desired_snapshot(self) -> tuple:
        # Read loaded values only: getattr on a deferred field would load it, and
        # loading goes through from_db, which snapshots again.
        return tuple(self.__dict__.get(name) for name in self.DESIRED_FIELDS)

    # --- derived -----------------------------------------------------------------------
    @property
    def spec(self) -> TemplateSpec:
        return self.template_version.spec

    @property
    def mode(self) -> str:
        return self.spec.mode(self.stage)

    @property
    def size_spec(self) -> DeploymentSize:
        return SIZES[self.size]

    @property
    def is_live(self) -> bool:
        return self.state != DeploymentState.DELETED

    @property
    def up_to_date(self) -> bool:
        return self.applied_generation >= self.desired_generation

    @property
    def permanently_failed(self) -> bool:
        """Whether the current desired state was refused for good: no retry helps until it changes."""
        return self.failed_generation is not None and self.failed_generation == self.desired_generation

    @property
    def uses_current_template(self) -> bool:
        return self.template_version_id == self.project.template.current_version_id

    def enabled_addon_ids(self) -> set[str]:
        return set(self.enabled_addons)

    @property
    def repository_url(self) -> str:
        return self.project.repository or self.spec.repository or ""

    def render_target(self, *, with_credentials: bool = False) -> RenderTarget:
        """Everything the manifests need, as a plain value (no ORM beyond this point).

        ``with_credentials``: include the project's deploy key and token (queries and an unsealing), as what is
        applied must; hosts, expectations and other reads do without."""
        return RenderTarget(
            deployment_id=self.pk,
            name=self.name,
            project=self.project.slug,
            namespace=self.namespace,
            stage=self.stage,
            spec=self.spec,
            repository=self.repository_url,
            branch=self.branch,
            size=self.size_spec,
            enabled=self.enabled,
            addons=frozenset(self.enabled_addons),
            env_overrides=self.env_overrides,
            generated_secrets=self.generated_secrets,
            custom_domains=tuple(self.custom_domains),
            image_overrides=self.image_overrides,
            restart_marks=self.restart_marks,
            built_images=self.built_images,
            git_credentials=self.git_credentials() if with_credentials else None,
            generation=self.desired_generation,
        )

    def git_credentials(self) -> GitCredentials | None:
        """The project's deploy key and HTTPS token for clone steps, or None. Raises ManifestError
        when one cannot be unsealed (the encryption key changed): applying then fails for good, saying so."""
        from deployments.ci.sealing import UnsealError
        from deployments.ci.services import repository_credentials

        try:
            return repository_credentials(self.project)
        except UnsealError as error:
            raise ManifestError(str(error)) from error

    def present_addons(self):
        return self.spec.addons_for(self.stage, self.enabled_addon_ids())

    def expected_pods(self) -> int:
        """How many pods run while enabled: what the size's requests and limits multiply by."""
        return sum(self.expected_replicas(c) for c in self.spec.components) + len(self.present_addons())

    def expected_replicas(self, component) -> int:
        """How many pods the component runs while enabled: as the manifests render it."""
        if self.mode == "source" or component.storage_for(self.stage):
            return 1
        return component.replicas_for(self.stage)

    def expectation(self, cluster: ClusterSettings, operations: list | None = None) -> Expectation:
        """What the status computation expects to find in the cluster for this deployment.

        ``operations``: its active operations (with ``requested_by``), when the caller
        read them already; else they are read here (one query).
        """
        hosts: dict[str, list[str]] = {}
        for component, _port, host in public_hosts(self.render_target(), cluster):
            hosts.setdefault(component.id, []).append(host)
        target = self.render_target()
        services = [
            ExpectedService(
                c.id,
                c.name,
                "component",
                c.port,
                tuple(hosts.get(c.id, ())),
                replicas=self.expected_replicas(c),
                image=target.image_of(c) or "",
                awaiting_build=target.awaits_build(c),
            )
            for c in self.spec.components
        ]
        services += [ExpectedService(a.id, a.name, "addon", a.port, image=a.image) for a in self.present_addons()]
        if operations is None:
            operations = list(
                self.operations.filter(status__in=(Operation.Status.PENDING, Operation.Status.RUNNING)).select_related(
                    "requested_by"
                )
            )
        intents = [op.intent() for op in sorted(operations, key=lambda op: op.requested_at, reverse=True)]
        return Expectation(
            namespace=self.namespace,
            services=tuple(services),
            enabled=self.enabled,
            applied=self.applied_generation > 0,
            up_to_date=self.up_to_date,
            custom_domains=tuple(self.custom_domains),
            generation=self.desired_generation,
            deleting=self.state in (DeploymentState.DELETING, DeploymentState.DELETED),
            intent=next((intent for intent in intents if intent is not None), None),
            size=self.size_spec.name,
            size_cpu=self.size_spec.cpu_words,
            size_memory=self.size_spec.memory_words(self.size_spec.memory_request),
            memory_limit=self.size_spec.memory_words(self.size_spec.memory_limit),
            status_service=self.spec.status_target[0] if self.spec.status_target else "",
        )


class DeploymentStatus(models.Model):
    """The latest status the watcher computed from the cluster (one row per deployment)."""

    deployment = models.OneToOneField(Deployment, on_delete=models.CASCADE, related_name="status")
    health = models.CharField(max_length=16, choices=Health.choices, default=Health.UNKNOWN)
    reason = models.CharField(max_length=300, blank=True)
    since = models.DateTimeField(default=timezone.now)
    tree = models.JSONField(default=dict, blank=True)
    observed_at = models.DateTimeField(null=True, blank=True, help_text="When the cluster was last seen for it.")
    cluster_error = models.CharField(max_length=300, blank=True)
    cpu_millicores = models.FloatField(null=True, blank=True)
    memory_bytes = models.FloatField(null=True, blank=True)
    cpu_sampled_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "deployment statuses"

    def __str__(self) -> str:
        return f"{self.deployment}: {self.health}"


class CpuSample(models.Model):
    """CPU usage of a deployment, aggregated into buckets of one tier's width."""

    # CPU and memory: one row per bucket holds both (the model keeps its first name).

    class Tier(models.TextChoices):
        RAW = "raw", "Raw samples (last minute)"
        MINUTE = "minute", "Per minute (last hour)"
        QUARTER = "quarter", "Per 15 minutes (last day)"

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="cpu_samples")
    tier = models.CharField(max_length=8, choices=Tier.choices)
    bucket_start = models.DateTimeField()
    total_millicores = models.FloatField(default=0)
    total_memory_bytes = models.FloatField(default=0)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["deployment", "tier", "bucket_start"], name="unique_cpu_bucket")]
        indexes = [models.Index(fields=["deployment", "tier", "bucket_start"])]

    def __str__(self) -> str:
        return f"{self.deployment_id} {self.tier} {self.bucket_start:%Y-%m-%d %H:%M:%S}: {self.millicores:.1f}m"

    @property
    def millicores(self) -> float:
        return self.total_millicores / self.count if self.count else 0.0

    @property
    def memory_bytes(self) -> float:
        return self.total_memory_bytes / self.count if self.count else 0.0


# ----------------------------------------------------------------------------- operations and audit


def lost_after_grace():
    """A new operation's task must have started (or said when it will retry) by then."""
    return timezone.now() + timedelta(seconds=settings.LOST_TASK_SECONDS)


class Operation(models.Model):
    """One piece of work asked of the cluster, as the UI shows it."""

    class Kind(models.TextChoices):
        CREATE = "create", "Create"
        RECONCILE = "reconcile", "Apply changes"
        RESTART = "restart", "Restart"
        DELETE = "delete", "Delete"
        DELETE_STORAGE = "delete_storage", "Delete storage"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="operations")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    target = models.CharField(max_length=63, blank=True, help_text="A component or add-on; empty for all.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    requested_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(
        null=True, blank=True, help_text="When the worker applied it; from then on it waits for the cluster to show it."
    )
    attempts = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True, help_text="What happened, or the error.")
    request = models.CharField(max_length=300, blank=True, help_text="What was asked, in words (kept as it was).")
    generation = models.PositiveIntegerField(default=0, help_text="The desired generation it applies.")
    due_at = models.DateTimeField(
        null=True,
        blank=True,
        default=lost_after_grace,
        help_text="When a worker is expected to act on it next. Past this, with nobody holding the "
        "deployment's lease, its task is taken as lost and sent again.",
    )

    class Meta:
        ordering = ["-requested_at", "-pk"]
        indexes = [models.Index(fields=["deployment", "status"]), models.Index(fields=["status", "due_at"])]

    def __str__(self) -> str:
        target = f" {self.target}" if self.target else ""
        return f"{self.get_kind_display()}{target} of {self.deployment} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.PENDING, self.Status.RUNNING)

    def intent(self) -> Intent | None:
        """What the status shows while this operation is under way (None: it changes nothing it watches)."""
        if self.kind == self.Kind.DELETE_STORAGE:
            return None
        changes = [part.strip().lower() for part in self.request.split(";")]
        kind = {
            self.Kind.CREATE: cluster_status.CREATE,
            self.Kind.RESTART: cluster_status.RESTART,
            self.Kind.DELETE: cluster_status.DELETE,
        }.get(self.kind, cluster_status.CHANGE)
        if kind == cluster_status.CHANGE:
            if any(change.startswith("disabled") for change in changes):
                kind = cluster_status.DISABLE
            elif "enabled" in changes:
                kind = cluster_status.ENABLE
        return Intent(
            kind=kind,
            started=self.requested_at,
            target=self.target,
            actor=self.requested_by.username if self.requested_by_id and self.requested_by else "",
            summary=self.request if kind == cluster_status.CHANGE else "",
        )


class ActivityEntry(models.Model):
    """The audit log: who did what, when. Never edited."""

    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="activity")
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="activity")
    deployment = models.ForeignKey(
        Deployment, null=True, blank=True, on_delete=models.SET_NULL, related_name="activity"
    )
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=64)
    message = models.CharField(max_length=500)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "activity entries"
        indexes = [models.Index(fields=["deployment", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action}: {self.message}"


class Lease(models.Model):
    """A named, expiring lock held by one process: e.g. the watcher that samples CPU."""

    name = models.CharField(max_length=64, unique=True)
    holder = models.CharField(max_length=128, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} held by {self.holder or 'nobody'}"

    @classmethod
    def acquire(cls, name: str, holder: str, seconds: float) -> bool:
        """Take or renew the lease (compare-and-set); True when ``holder`` has it now. A renewal is
        one statement (the watchers renew theirs every second); the row is made on the first ask."""
        now = timezone.now()

        def claim() -> bool:
            free_or_ours = Q(expires_at__isnull=True) | Q(expires_at__lt=now) | Q(holder=holder)
            rows = cls.objects.filter(free_or_ours, name=name)
            return bool(rows.update(holder=holder, expires_at=now + timedelta(seconds=seconds)))

        if claim():
            return True
        _, created = cls.objects.get_or_create(name=name)
        return created and claim()

    @classmethod
    def release(cls, name: str, holder: str) -> bool:
        """Give the lease back if ``holder`` has it (a clean stop): the next holder takes it at once
        instead of waiting for it to expire. True when it was held. Idempotent."""
        return bool(cls.objects.filter(name=name, holder=holder).update(holder="", expires_at=None))


def record_activity(*, action: str, message: str, actor=None, deployment=None, project=None, team=None, **data):
    """Write one audit row. Call it inside the transaction of the change it records."""
    if deployment is not None:
        project = project or deployment.project
    if project is not None:
        team = team or project.team
    return ActivityEntry.objects.create(
        action=action,
        message=redact_credentials(message)[:500],
        actor=actor if actor is not None and actor.is_authenticated else None,
        deployment=deployment,
        project=project,
        team=team,
        data=data,
    )

"""Templates and their immutable versions.

A `Template` is the catalog entry for one spec file; every distinct content of
that file that validated becomes a `TemplateVersion`. Deployments point at the
version they were created from, so editing a file never changes what runs.
"""

from django.db import models

from templates_catalog.spec import TemplateSpec


class TemplateQuerySet(models.QuerySet):
    def available(self):
        """Templates a user may start a project from: enabled and with a valid version loaded."""
        return self.filter(enabled=True, current_version__isnull=False)


# (version id, digest) -> parsed spec. Keyed by the digest too, so a reused id
# (a rolled-back test transaction) can never return another version's spec.
_PARSED_SPECS: dict[tuple[int, str], TemplateSpec] = {}


class Template(models.Model):
    class Validation(models.TextChoices):
        VALID = "valid", "Valid"
        INVALID = "invalid", "Invalid"

    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True, help_text="Disabled templates are hidden from new projects.")
    current_version = models.ForeignKey(
        "TemplateVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source_path = models.CharField(max_length=500, blank=True)
    validation = models.CharField(max_length=16, choices=Validation.choices, default=Validation.VALID)
    last_error = models.TextField(blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TemplateQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def spec(self) -> TemplateSpec | None:
        return self.current_version.spec if self.current_version else None

    @property
    def is_available(self) -> bool:
        return self.enabled and self.current_version_id is not None

    def outdated_deployments(self):
        """Live deployments of this template still on a version other than the current one."""
        from templates_catalog.selectors import outdated_deployments

        return outdated_deployments(template=self)


class TemplateVersion(models.Model):
    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=64)
    digest = models.CharField(max_length=64, help_text="SHA-256 of the normalized spec.")
    spec_data = models.JSONField()
    source = models.TextField(help_text="The YAML file as it was loaded.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["template", "digest"], name="unique_template_digest")]

    def __str__(self) -> str:
        return f"{self.template.slug} {self.version} ({self.digest[:8]})"

    @property
    def spec(self) -> TemplateSpec:
        """The parsed spec, parsed once per process: a version's content never changes."""
        key = (self.pk, self.digest)
        spec = _PARSED_SPECS.get(key)
        if spec is None:
            spec = _PARSED_SPECS[key] = TemplateSpec.from_dict(self.spec_data)
        return spec

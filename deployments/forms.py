"""Forms: they parse and present input; the rules live in `services`."""

from __future__ import annotations

import re
from collections.abc import Mapping

from django import forms
from django.core.exceptions import ValidationError

from deployments.models import Project
from deployments.naming import dns_label_error, repository_error, slugify_label
from deployments.sizes import SIZES
from templates_catalog.models import Template

_ENV_LINE = re.compile(r"^\s*(?:(?P<service>[a-z0-9-]+)\.)?(?P<name>[^=\s]+)\s*=(?P<value>.*)$")


# Services name a few fields after the model; the forms after what users type.
SERVICE_FIELDS = {"env_overrides": "env"}


def apply_service_errors(form: forms.Form, error: ValidationError) -> None:
    """Show a service's ValidationError on the form's fields (or at the top)."""
    if hasattr(error, "error_dict"):
        for field, messages in error.message_dict.items():
            field = SERVICE_FIELDS.get(field, field)
            form.add_error(field if field in form.fields else None, messages)
    else:
        form.add_error(None, error.messages)


def parse_env_lines(text: str, *, default_service: str | None = None) -> dict[str, dict[str, str]]:
    """``service.NAME=value`` lines (``NAME=value`` with a default service) into overrides."""
    overrides: dict[str, dict[str, str]] = {}
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _ENV_LINE.match(line)
        service = match and (match.group("service") or default_service)
        if not match or not service:
            problems.append(f"Line {number}: write service.NAME=value, e.g. app.DEBUG=true.")
            continue
        overrides.setdefault(service, {})[match.group("name")] = match.group("value").strip()
    if problems:
        raise ValidationError(problems)
    return overrides


# What a secret's value is shown as in a form; saving it unchanged keeps the secret.
SECRET_MASK = "••••••••"  # noqa: S105 - a placeholder shown instead of a value, not a password


def format_env_lines(
    overrides: Mapping[str, Mapping[str, str]], *, secrets: Mapping[str, Mapping[str, str]] | None = None
) -> str:
    """Overrides as ``service.NAME=value`` lines; the values of ``secrets`` are masked."""
    secrets = secrets or {}
    return "\n".join(
        f"{service}.{name}={SECRET_MASK if name in secrets.get(service, {}) else value}"
        for service, values in overrides.items()
        for name, value in values.items()
    )


def unmask_env(
    overrides: dict[str, dict[str, str]], secrets: Mapping[str, Mapping[str, str]]
) -> dict[str, dict[str, str]]:
    """Put back the kept value of every secret left masked; a mask where there is no secret is an error."""
    problems = []
    for service, values in overrides.items():
        for name, value in values.items():
            if value != SECRET_MASK:
                continue
            if name in secrets.get(service, {}):
                values[name] = secrets[service][name]
            else:
                problems.append(f"{service}.{name}: type the value ({SECRET_MASK} stands for a secret kept as is).")
    if problems:
        raise ValidationError(problems)
    return overrides


class ProjectSettingsForm(forms.Form):
    name = forms.CharField(max_length=100)
    repository = forms.CharField(
        max_length=500,
        required=False,
        help_text="Your app's Git repository, e.g. https://github.com/you/app.git: development deployments clone "
        "it and builds build it. Leave it empty only if the template has a starter repository.",
    )

    def clean_repository(self):
        repository = self.cleaned_data["repository"].strip()
        if error := repository_error(repository):
            if "credentials" in error:
                raise ValidationError(f"The repository {error}.")
            raise ValidationError("Give an https://, ssh:// or git@host: address of a Git repository.")
        return repository


class ProjectForm(ProjectSettingsForm):
    template = forms.ModelChoiceField(queryset=Template.objects.none(), empty_label=None)
    slug = forms.CharField(
        max_length=30,
        required=False,
        label="Short name",
        help_text="Lowercase letters, digits and '-'. Part of every deployment's namespace. Cannot be changed. "
        "Empty: made from the name.",
    )

    field_order = ["template", "name", "slug", "repository"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = Template.objects.available()

    def clean_slug(self):
        slug = self.cleaned_data["slug"]
        if not slug:
            return slug  # made from the name in clean()
        error = dns_label_error(slug)
        if error:
            raise ValidationError(f"The short name {error}.")
        return slug

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("slug") and cleaned.get("name") and "slug" not in self.errors:
            cleaned["slug"] = slugify_label(cleaned["name"], 30)
        return cleaned


class DeploymentCreateForm(forms.Form):
    name = forms.CharField(
        max_length=40,
        help_text="Lowercase letters, digits and '-': it becomes part of the public address.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    stage = forms.ChoiceField(widget=forms.RadioSelect)
    branch = forms.CharField(
        max_length=200,
        initial="main",
        required=False,
        help_text="Development clones this branch onto the code volume once.",
    )
    size = forms.ChoiceField(choices=[(s.key, s.label) for s in SIZES.values()], initial="small")
    addons = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple, label="Optional add-ons")
    env = forms.CharField(
        required=False,
        label="Environment overrides",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "app.DJANGO_DEBUG=true"}),
        help_text="One per line: component.NAME=value. Overrides the template's value.",
    )
    custom_domains = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "www.example.com"}),
        help_text="One per line. Point each at the edge with a CNAME (shown after creating).",
    )

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        self.project = project
        spec = project.template.current_version.spec
        labels = {"source": "runs your code from Git with hot reload", "build": "runs the built image"}
        self.fields["stage"].choices = [
            (stage, f"{stage.capitalize()}: {labels[mode]}") for stage, mode in spec.stages.items()
        ]
        self.fields["stage"].initial = next(iter(spec.stages))
        optional = [a for a in spec.addons if a.toggleable]
        self.fields["addons"].choices = [(a.id, a.name) for a in optional]
        self.fields["addons"].initial = [a.id for a in optional if a.default_enabled]
        if not optional:
            del self.fields["addons"]

    def clean_env(self):
        default = self.project.template.current_version.spec.components[0].id
        return parse_env_lines(self.cleaned_data["env"], default_service=default)

    def clean_custom_domains(self):
        # Normalized and checked by `services.custom_domain_problems`, the same for every entry point.
        return [line.strip() for line in self.cleaned_data["custom_domains"].splitlines() if line.strip()]


class RenameForm(forms.Form):
    name = forms.CharField(max_length=40, help_text="Changes the public address; the namespace stays the same.")


class EnvironmentForm(forms.Form):
    env = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        label="Overrides",
        help_text="One per line: component.NAME=value. Remove a line to go back to the template's value. "
        f"Secrets show as {SECRET_MASK}: leave that to keep the value.",
    )

    def __init__(self, *args, default_service: str, secrets: Mapping[str, Mapping[str, str]] | None = None, **kwargs):
        """``secrets``: the current overrides of secret variables, shown masked and kept when left masked."""
        super().__init__(*args, **kwargs)
        self.default_service = default_service
        self.secrets = secrets or {}

    def clean_env(self):
        overrides = parse_env_lines(self.cleaned_data["env"], default_service=self.default_service)
        return unmask_env(overrides, self.secrets)


class DomainsForm(forms.Form):
    custom_domains = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Custom domains")

    def clean_custom_domains(self):
        # Normalized and checked by `services.custom_domain_problems`, the same for every entry point.
        return [line.strip() for line in self.cleaned_data["custom_domains"].splitlines() if line.strip()]


class DeleteForm(forms.Form):
    confirm = forms.CharField(
        label="Type the deployment's name to confirm", widget=forms.TextInput(attrs={"autocomplete": "off"})
    )

    def __init__(self, *args, expected: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.expected = expected

    def clean_confirm(self):
        if self.cleaned_data["confirm"].strip() != self.expected:
            raise ValidationError(f"Type “{self.expected}” exactly to delete this deployment.")
        return self.cleaned_data["confirm"]

"""`python manage.py manifests`: print the YAML Diploi would apply, as `helm template` does.

Secret values are hidden unless ``--show-secrets`` is given; printing a real
deployment's secrets is recorded in its activity log, like a reveal.
"""

import yaml
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from deployments.cluster.connection import cluster_settings
from deployments.cluster.environment import EnvironmentError, missing_secrets
from deployments.cluster.manifests import ManifestError, RenderTarget, render
from deployments.models import Deployment, record_activity
from deployments.naming import redact_credentials
from deployments.sizes import SIZES
from templates_catalog.models import Template

# Not base64: a masked output cannot be applied by mistake.
HIDDEN = "<hidden>"


class _PlainDumper(yaml.SafeDumper):
    """Writes a value shared by two objects (a probe's action) out twice, not as a YAML anchor and alias."""

    def ignore_aliases(self, data) -> bool:
        return True


class Command(BaseCommand):
    help = (
        "Print the Kubernetes objects of a deployment (by id), or of an example deployment of a template "
        "in a stage (--template/--stage), as YAML for review or `kubectl apply -f -`."
    )

    def add_arguments(self, parser):
        parser.add_argument("deployment", nargs="?", type=int, help="A deployment's id.")
        parser.add_argument("--template", help="A template's slug (renders an example deployment).")
        parser.add_argument("--stage", help="With --template: development, staging or production.")
        parser.add_argument("--name", default="example", help="With --template: the example deployment's name.")
        parser.add_argument(
            "--show-secrets",
            action="store_true",
            help="Print Secret values (and repository credentials) too; recorded in the deployment's activity log.",
        )

    def handle(self, *args, deployment=None, template=None, stage=None, name="example", show_secrets=False, **options):
        if (deployment is None) == (template is None):
            raise CommandError("Give a deployment id, or --template with --stage.")
        if deployment is not None:
            found = Deployment.objects.select_related("project", "template_version").filter(pk=deployment).first()
            if found is None:
                raise CommandError(f"There is no deployment {deployment}.")
            target = found.render_target()
        else:
            target = self._example(template, stage, name)
        try:
            objects = render(target, cluster_settings())
        except (ManifestError, EnvironmentError) as error:
            raise CommandError(str(error)) from error
        if show_secrets and deployment is not None:
            record_activity(
                action="secret.printed",
                message="Every secret printed by manage.py manifests --show-secrets",
                deployment=found,
            )
        if not show_secrets:
            for obj in objects:
                if obj["kind"] == "Secret":
                    obj["data"] = dict.fromkeys(obj.get("data", {}), HIDDEN)
        text = yaml.dump_all(objects, Dumper=_PlainDumper, sort_keys=False, default_flow_style=False)
        if not show_secrets:
            notice = f"# Secret values are hidden ({HIDDEN}): --show-secrets prints them (audited).\n"
            text = notice + redact_credentials(text)
        self.stdout.write(text, ending="")

    def _example(self, slug: str, stage: str | None, name: str) -> RenderTarget:
        found = Template.objects.select_related("current_version").filter(slug=slug).first()
        if found is None or found.current_version is None:
            raise CommandError(f"There is no loaded template “{slug}” (run sync_templates).")
        spec = found.current_version.spec
        if stage not in spec.stages:
            raise CommandError(f"--stage must be one of: {', '.join(spec.stages)}.")
        return RenderTarget(
            deployment_id=0,
            name=name,
            project="example",
            namespace=f"example-{name}",
            stage=stage,
            spec=spec,
            repository=spec.repository or "https://example.com/repository.git",
            branch="main",
            size=SIZES["small"],
            # An example has no stored secrets: these are fresh random values.
            generated_secrets=missing_secrets(spec, {}),
            # Nor builds: components built from the repository get an example image, pinned by digest.
            built_images={
                c.id: f"{settings.REGISTRY}/example/{c.id}@sha256:{'0' * 64}" for c in spec.components if c.build
            },
        )

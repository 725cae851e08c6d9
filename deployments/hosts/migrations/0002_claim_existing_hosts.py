"""Claim the hosts live deployments already have, oldest deployment first.

A host two deployments already share (possible before claims existed) stays
with the older one; the younger one is reported (printed here, and an entry in
its activity log) and keeps running unchanged until someone renames it or
changes its domains, which then needs a free host.
"""

import re

from django.conf import settings
from django.db import migrations

_ASCII_HOST = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")


def _fill(text, **values):
    for name, value in values.items():
        text = text.replace(f"[{name}]", value)
    return text


def _hosts(deployment):
    spec = deployment.template_version.spec_data
    hosts = []
    for component in spec.get("components", []):
        for endpoint in component.get("public", []):
            host = _fill(
                endpoint["host"],
                component=component["id"],
                deployment=deployment.name,
                project=deployment.project.slug,
                **{"base-domain": settings.BASE_DOMAIN},
            )
            hosts.append((host.lower().rstrip("."), "platform"))
    hosts += [(domain.strip().lower().rstrip("."), "custom") for domain in deployment.custom_domains or []]
    return hosts


def claim_existing_hosts(apps, schema_editor):
    Deployment = apps.get_model("deployments", "Deployment")
    ActivityEntry = apps.get_model("deployments", "ActivityEntry")
    HostClaim = apps.get_model("hosts", "HostClaim")
    claimed = {}
    live = Deployment.objects.exclude(state="deleted").select_related("project", "template_version")
    for deployment in live.order_by("created_at", "pk"):
        for host, kind in _hosts(deployment):
            holder = claimed.get(host)
            if holder == deployment.pk:
                continue
            if holder is not None or not _ASCII_HOST.match(host):
                message = (
                    f"The public host {host} is also used by deployment {holder}, which had it first: rename this "
                    "deployment or change its domains so that each host has one deployment"
                    if holder is not None
                    else f"The host {host[:200]} is not a plain ASCII host name: change this deployment's domains"
                )
                ActivityEntry.objects.create(
                    action="host.collision",
                    message=message[:500],
                    deployment_id=deployment.pk,
                    project_id=deployment.project_id,
                    team_id=deployment.project.team_id,
                    data={"host": host, "holder": holder},
                )
                print(f"\n  deployment {deployment.pk}: {message}")
                continue
            HostClaim.objects.create(
                host=host, kind=kind, deployment_id=deployment.pk, team_id=deployment.project.team_id
            )
            claimed[host] = deployment.pk


class Migration(migrations.Migration):

    dependencies = [
        ("hosts", "0001_initial"),
    ]

    operations = [migrations.RunPython(claim_existing_hosts, migrations.RunPython.noop)]

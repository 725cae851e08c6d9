from __future__ import annotations

import pytest

from templates_catalog.models import TemplateVersion
from templates_catalog.spec import TemplateSpec


@pytest.fixture
def pinned_host_format(catalog):
    """Make a shipped template's current version publish at ``host_format``.

    Templates loaded before host formats had to name the project stay pinned
    on deployments: stored versions are never validated again, so the database
    must refuse their colliding hosts itself.
    """

    def pin(host_format: str, template: str = "django-postgres") -> TemplateVersion:
        entry = catalog[template]
        data = entry.current_version.spec.to_dict()
        for component in data["components"]:
            for endpoint in component["public"]:
                endpoint["host"] = host_format
        TemplateSpec.from_dict(data)  # still a well-formed spec
        version = TemplateVersion.objects.create(
            template=entry,
            version="0.9-old-hosts",
            digest=f"old-{host_format}",
            spec_data=data,
            source="# an old version",
        )
        entry.current_version = version
        entry.save(update_fields=["current_version"])
        return version

    return pin

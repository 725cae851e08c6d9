"""Loading the catalog directory: idempotence, changes, broken files, removed files."""

from __future__ import annotations

import hashlib

import pytest

from deployments.models import DeploymentState
from templates_catalog.loader import (
    REMOVED_MARK,
    CatalogDirectoryError,
    SyncStatus,
    spec_digest,
    spec_json,
    sync_catalog,
)
from templates_catalog.models import Template, TemplateVersion
from templates_catalog.validation import parse_template
from tests.templates_catalog.conftest import SHIPPED_FILES

pytestmark = pytest.mark.django_db


def statuses(report) -> dict[str, str]:
    return {result.slug: str(result.status) for result in report.results}


def edit(path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_it_loads_every_shipped_template(catalog_dir):
    report = sync_catalog(catalog_dir)

    assert statuses(report) == {path.stem: "added" for path in SHIPPED_FILES}
    assert not report.failed
    for path in SHIPPED_FILES:
        template = Template.objects.get(slug=path.stem)
        spec = parse_template(path.read_text(), path.name)
        version = template.current_version
        assert (template.name, template.description, template.enabled) == (spec.name, spec.description, True)
        assert template.validation == Template.Validation.VALID and template.last_error == ""
        assert template.source_path == str(catalog_dir / path.name)
        assert version.digest == hashlib.sha256(spec_json(spec).encode()).hexdigest() == spec_digest(spec)
        assert version.spec == spec and version.version == spec.version
        assert version.source == path.read_text()


def test_it_reports_everything_unchanged_on_a_second_run(catalog_dir):
    sync_catalog(catalog_dir)
    versions = list(TemplateVersion.objects.values_list("pk", flat=True))

    report = sync_catalog(catalog_dir)

    assert set(statuses(report).values()) == {"unchanged"}
    assert list(TemplateVersion.objects.values_list("pk", flat=True)) == versions
    assert (
        report.summary()
        == f"{len(SHIPPED_FILES)} templates: 0 added, 0 changed, {len(SHIPPED_FILES)} unchanged, 0 failed, 0 removed"
    )


def test_it_makes_a_changed_file_the_current_version_and_keeps_the_old_one(loaded_catalog):
    template = Template.objects.get(slug="static-nginx")
    first = template.current_version
    edit(loaded_catalog / "static-nginx.yaml", 'version: "1.1.0"', 'version: "1.2.0"')
    edit(loaded_catalog / "static-nginx.yaml", "size: 1Gi", "size: 2Gi")

    report = sync_catalog(loaded_catalog)

    assert statuses(report)["static-nginx"] == "changed"
    assert {s for slug, s in statuses(report).items() if slug != "static-nginx"} == {"unchanged"}
    template.refresh_from_db()
    assert template.current_version != first and template.current_version.version == "1.2.0"
    assert template.current_version.spec.component("web").storage[0].size == "2Gi"
    assert set(template.versions.all()) == {first, template.current_version}


def test_it_notes_a_changed_file_that_kept_its_version(loaded_catalog):
    edit(loaded_catalog / "static-nginx.yaml", "size: 1Gi", "size: 2Gi")

    (result,) = [r for r in sync_catalog(loaded_catalog).results if r.slug == "static-nginx"]

    assert result.status == SyncStatus.CHANGED
    assert result.note == "content changed but the version is still 1.1.0; consider raising it"


def test_it_ignores_comments_and_formatting(loaded_catalog):
    path = loaded_catalog / "django-postgres.yaml"
    path.write_text("# A new comment.\n" + path.read_text().replace("port: 8000\n", "port:    8000   # the app\n"))

    assert statuses(sync_catalog(loaded_catalog))["django-postgres"] == "unchanged"


def test_it_goes_back_to_an_earlier_version_without_a_new_row(loaded_catalog):
    path = loaded_catalog / "static-nginx.yaml"
    original = path.read_text()
    first = Template.objects.get(slug="static-nginx").current_version
    edit(path, "size: 1Gi", "size: 2Gi")
    sync_catalog(loaded_catalog)
    path.write_text(original)

    (result,) = [r for r in sync_catalog(loaded_catalog).results if r.slug == "static-nginx"]

    assert result.status == SyncStatus.CHANGED and result.note.startswith("back to the content of an earlier version")
    assert Template.objects.get(slug="static-nginx").current_version == first
    assert TemplateVersion.objects.filter(template__slug="static-nginx").count() == 2


def test_it_keeps_the_last_good_version_of_a_broken_file_and_loads_the_others(loaded_catalog):
    good = Template.objects.get(slug="django-postgres").current_version
    edit(loaded_catalog / "django-postgres.yaml", "port: 8000", "port: 80000")
    edit(loaded_catalog / "django-postgres.yaml", "size: 5Gi", "size: lots")
    edit(loaded_catalog / "nextjs-postgres.yaml", 'version: "1.1.0"', 'version: "1.1.1"')

    report = sync_catalog(loaded_catalog)

    assert statuses(report)["django-postgres"] == "failed"
    assert statuses(report)["nextjs-postgres"] == "changed"
    assert report.failed
    (failed,) = report.of(SyncStatus.FAILED)
    assert [p.path for p in failed.problems] == ["components[0].port", "components[0].storage.code.size"]
    assert failed.note == "still serving version 1.1.0"
    template = Template.objects.get(slug="django-postgres")
    assert template.current_version == good and template.enabled
    assert template.validation == Template.Validation.INVALID
    assert "django-postgres.yaml:" in template.last_error and "components[0].port" in template.last_error
    assert Template.objects.available().filter(slug="django-postgres").exists()


def test_it_marks_a_fixed_file_valid_again(loaded_catalog):
    path = loaded_catalog / "django-postgres.yaml"
    original = path.read_text()
    path.write_text("slug: [")
    sync_catalog(loaded_catalog)
    path.write_text(original)

    (result,) = [r for r in sync_catalog(loaded_catalog).results if r.slug == "django-postgres"]

    assert (result.status, result.note) == (SyncStatus.UNCHANGED, "valid again")
    template = Template.objects.get(slug="django-postgres")
    assert (template.validation, template.last_error) == (Template.Validation.VALID, "")


def test_it_records_a_new_broken_file_without_offering_it(loaded_catalog):
    (loaded_catalog / "half-done.yaml").write_text("slug: half-done\nname: Half done\n")

    report = sync_catalog(loaded_catalog)

    assert statuses(report)["half-done"] == "failed"
    template = Template.objects.get(slug="half-done")
    assert template.current_version is None and template.validation == Template.Validation.INVALID
    assert "description: is required" in template.last_error
    assert not Template.objects.available().filter(slug="half-done").exists()
    assert [r.note for r in report.results if r.slug == "half-done"] == ["not in the catalog until the file is fixed"]


def test_it_does_not_record_a_broken_file_whose_name_cannot_be_a_slug(loaded_catalog):
    (loaded_catalog / "Not A Slug.yaml").write_text("nope")

    report = sync_catalog(loaded_catalog)

    assert statuses(report)["Not A Slug"] == "failed"
    assert not Template.objects.filter(slug="Not A Slug").exists()


def test_it_reports_an_unreadable_file(loaded_catalog):
    (loaded_catalog / "latin.yaml").write_bytes(b"name: caf\xe9\n")

    (result,) = [r for r in sync_catalog(loaded_catalog).results if r.slug == "latin"]

    assert result.status == SyncStatus.FAILED
    assert result.problems[0].message.startswith("cannot read the file:")


def test_it_fails_two_files_with_the_same_name(loaded_catalog):
    (loaded_catalog / "static-nginx.yml").write_text((loaded_catalog / "static-nginx.yaml").read_text())
    first = Template.objects.get(slug="static-nginx").current_version

    report = sync_catalog(loaded_catalog)

    failed = report.of(SyncStatus.FAILED)
    assert [r.file for r in failed] == ["static-nginx.yaml", "static-nginx.yml"]
    assert failed[0].problems[0].message == "another file has the same name (static-nginx.yml); keep one of them"
    assert Template.objects.get(slug="static-nginx").current_version == first


def test_it_disables_a_template_whose_file_was_removed_and_reenables_it_when_back(loaded_catalog, make_deployment):
    path = loaded_catalog / "static-nginx.yaml"
    text = path.read_text()
    template = Template.objects.get(slug="static-nginx")
    deployment = make_deployment(template)
    path.unlink()

    report = sync_catalog(loaded_catalog)

    assert statuses(report)["static-nginx"] == "removed"
    template.refresh_from_db()
    assert not template.enabled and template.last_error.startswith(REMOVED_MARK)
    assert template.current_version == deployment.template_version  # nothing deleted
    assert "static-nginx" not in statuses(sync_catalog(loaded_catalog))  # reported once

    path.write_text(text)
    (result,) = [r for r in sync_catalog(loaded_catalog).results if r.slug == "static-nginx"]

    assert result.status == SyncStatus.UNCHANGED and "enabled again" in result.note
    template.refresh_from_db()
    assert template.enabled and template.last_error == ""


def test_it_keeps_a_template_disabled_by_an_operator(loaded_catalog):
    Template.objects.filter(slug="static-nginx").update(enabled=False)

    sync_catalog(loaded_catalog)

    assert not Template.objects.get(slug="static-nginx").enabled


def test_it_leaves_templates_of_other_directories_alone(loaded_catalog, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "static-nginx.yaml").write_text((loaded_catalog / "static-nginx.yaml").read_text())

    report = sync_catalog(other)

    assert statuses(report) == {"static-nginx": "unchanged"}
    assert Template.objects.filter(enabled=True).count() == len(SHIPPED_FILES)


def test_it_keeps_deployments_on_the_version_they_were_created_from(loaded_catalog, make_deployment):
    template = Template.objects.get(slug="fastapi-redis")
    old = make_deployment(template)
    edit(loaded_catalog / "fastapi-redis.yaml", 'version: "1.1.0"', 'version: "1.2.0"')
    sync_catalog(loaded_catalog)
    template.refresh_from_db()
    new = make_deployment(template)
    deleted = make_deployment(template, version=old.template_version, state=DeploymentState.DELETED)

    old.refresh_from_db()
    assert old.template_version.version == "1.1.0"
    assert list(template.outdated_deployments()) == [old]
    assert new.uses_current_template and not old.uses_current_template
    assert deleted not in template.outdated_deployments()


def test_it_uses_the_configured_directory_by_default(catalog_dir, settings):
    settings.TEMPLATES_CATALOG_DIR = catalog_dir

    report = sync_catalog()

    assert report.directory == catalog_dir.resolve() and len(report.of(SyncStatus.ADDED)) == len(SHIPPED_FILES)


def test_it_refuses_a_missing_directory(tmp_path):
    with pytest.raises(CatalogDirectoryError):
        sync_catalog(tmp_path / "nowhere")

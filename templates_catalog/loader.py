"""Loading the catalog directory into `Template` / `TemplateVersion` rows.

`sync_catalog` is idempotent: a second run over the same files reports every
template unchanged and writes no version. Each file is loaded in its own
transaction, so a broken file (or a database error on one) never stops the
others, and a broken file keeps its template's last good version. Templates
are never deleted (deployments reference their versions): a template whose
file left the directory is disabled.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from templates_catalog.models import Template, TemplateVersion
from templates_catalog.spec import TemplateSpec
from templates_catalog.validation import SpecError, SpecProblem, format_problems, is_valid_slug, parse_template

SPEC_SUFFIXES = (".yaml", ".yml")
# `last_error` of a template disabled because its file is gone starts with this;
# it is how a later sync knows it already did so (and re-enables it when the file is back).
REMOVED_MARK = "Template file removed:"


class SyncStatus(StrEnum):
    ADDED = "added"
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    FAILED = "failed"
    REMOVED = "removed"


@dataclass(frozen=True)
class SyncResult:
    """What happened to one template (one file, or one template whose file is gone)."""

    slug: str
    status: SyncStatus
    file: str
    version: str = ""
    digest: str = ""
    problems: tuple[SpecProblem, ...] = ()
    note: str = ""


@dataclass
class SyncReport:
    directory: Path
    results: list[SyncResult] = field(default_factory=list)

    def of(self, status: SyncStatus) -> list[SyncResult]:
        return [result for result in self.results if result.status == status]

    def counts(self) -> dict[SyncStatus, int]:
        return {status: len(self.of(status)) for status in SyncStatus}

    @property
    def failed(self) -> bool:
        return any(result.status == SyncStatus.FAILED for result in self.results)

    def summary(self) -> str:
        counts = self.counts()
        parts = ", ".join(f"{counts[status]} {status}" for status in SyncStatus)
        return f"{len(self.results)} template{'s' if len(self.results) != 1 else ''}: {parts}"


class CatalogDirectoryError(Exception):
    """The catalog directory does not exist or is not a directory."""


def spec_json(spec: TemplateSpec) -> str:
    """The canonical JSON of a spec: what its digest is computed over."""
    return json.dumps(spec.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def spec_digest(spec: TemplateSpec) -> str:
    """SHA-256 (hex) of the canonical JSON of ``spec.to_dict()``."""
    return hashlib.sha256(spec_json(spec).encode()).hexdigest()


def sync_catalog(directory: Path | None = None) -> SyncReport:
    """Load every *.yaml / *.yml file of ``directory`` (default: settings.TEMPLATES_CATALOG_DIR).

    Per file: added, changed, unchanged or failed; templates whose file is gone
    are disabled once and reported removed. Idempotent; safe to run while
    another sync runs (each template row is locked while it is written).
    """
    directory = Path(directory if directory is not None else settings.TEMPLATES_CATALOG_DIR).resolve()
    if not directory.is_dir():
        raise CatalogDirectoryError(f"{directory} is not a directory")
    files = sorted(path for path in directory.iterdir() if path.suffix in SPEC_SUFFIXES and path.is_file())
    stems = Counter(path.stem for path in files)
    report = SyncReport(directory)
    for path in files:
        if stems[path.stem] > 1:
            others = ", ".join(other.name for other in files if other.stem == path.stem and other != path)
            problem = SpecProblem(path.name, "", f"another file has the same name ({others}); keep one of them")
            report.results.append(_record_failure(path, [problem]))
        else:
            report.results.append(_sync_file(path))
    report.results.extend(_disable_removed(directory, {path.stem for path in files}))
    return report


@functools.lru_cache(maxsize=64)
def _parsed(text: str, filename: str) -> TemplateSpec:
    """`parse_template`, remembered per (text, file name): it is pure, and its YAML parsing is most of
    what a sync of unchanged files costs. A spec with problems raises each time (never remembered)."""
    return parse_template(text, filename)


def _sync_file(path: Path) -> SyncResult:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return _record_failure(path, [SpecProblem(path.name, "", f"cannot read the file: {exc}")])
    try:
        spec = _parsed(text, path.name)
    except SpecError as exc:
        return _record_failure(path, exc.problems)
    try:
        return _store(path, text, spec)
    except DatabaseError as exc:
        return SyncResult(
            path.stem,
            SyncStatus.FAILED,
            path.name,
            problems=(SpecProblem(path.name, "", f"database error, nothing saved: {exc}"),),
        )


@transaction.atomic
def _store(path: Path, text: str, spec: TemplateSpec) -> SyncResult:
    canonical = spec_json(spec)
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    template, created = Template.objects.get_or_create(
        slug=spec.slug, defaults={"name": spec.name, "description": spec.description, "source_path": str(path)}
    )
    # Lock the row: two syncs at once then serialize per template instead of racing on versions.
    template = Template.objects.select_for_update(of=("self",)).select_related("current_version").get(pk=template.pk)
    previous = template.current_version
    version = template.versions.filter(digest=digest).first()
    notes = []
    if version is None:
        version = TemplateVersion.objects.create(
            template=template, version=spec.version, digest=digest, spec_data=json.loads(canonical), source=text
        )
        if previous is not None and previous.version == spec.version:
            notes.append(f"content changed but the version is still {spec.version}; consider raising it")
    elif previous is not None and previous.pk != version.pk:
        notes.append(f"back to the content of an earlier version ({version.version}, {digest[:12]})")

    if created or previous is None:
        status = SyncStatus.ADDED
    elif previous.pk == version.pk:
        status = SyncStatus.UNCHANGED
    else:
        status = SyncStatus.CHANGED
    if template.validation == Template.Validation.INVALID and not created:
        notes.append("valid again")
    if template.last_error.startswith(REMOVED_MARK) and not template.enabled:
        template.enabled = True
        notes.append("the file is back: template enabled again")

    template.name = spec.name
    template.description = spec.description
    template.current_version = version
    template.source_path = str(path)
    template.validation = Template.Validation.VALID
    template.last_error = ""
    template.last_synced_at = timezone.now()
    template.save()
    return SyncResult(spec.slug, status, path.name, spec.version, digest, note="; ".join(notes))


def _record_failure(path: Path, problems: list[SpecProblem]) -> SyncResult:
    """Mark the file's template invalid, keeping its current version; create it when the slug is new."""
    error = format_problems(problems)
    note = ""
    try:
        with transaction.atomic():
            template = Template.objects.select_for_update(of=("self",)).select_related("current_version")
            template = template.filter(slug=path.stem).first()
            if template is None and is_valid_slug(path.stem):
                # Recorded without a version so operators see the broken file in the admin;
                # a template without a version is never offered to users.
                template = Template(slug=path.stem, name=path.stem)
            if template is not None:
                template.validation = Template.Validation.INVALID
                template.last_error = error
                template.source_path = str(path)
                template.last_synced_at = timezone.now()
                template.save()
                if template.current_version is not None:
                    note = f"still serving version {template.current_version.version}"
                else:
                    note = "not in the catalog until the file is fixed"
    except DatabaseError as exc:
        note = f"database error, state not recorded: {exc}"
    return SyncResult(path.stem, SyncStatus.FAILED, path.name, problems=tuple(problems), note=note)


def _disable_removed(directory: Path, present: set[str]) -> list[SyncResult]:
    """Disable (once) each template last loaded from ``directory`` whose file is gone."""
    results = []
    candidates = Template.objects.filter(source_path__startswith=str(directory)).exclude(slug__in=present)
    for template in candidates:
        source = Path(template.source_path)
        if source.parent != directory or template.last_error.startswith(REMOVED_MARK):
            continue
        with transaction.atomic():
            locked = Template.objects.select_for_update().get(pk=template.pk)
            locked.enabled = False
            locked.last_error = f"{REMOVED_MARK} {source} is no longer in the catalog directory; template disabled."
            locked.last_synced_at = timezone.now()
            locked.save(update_fields=["enabled", "last_error", "last_synced_at"])
        results.append(
            SyncResult(template.slug, SyncStatus.REMOVED, source.name, note="file removed; template disabled")
        )
    return results

"""`python manage.py sync_templates [--dir PATH]`: load the template catalog directory."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from templates_catalog.loader import CatalogDirectoryError, SyncStatus, sync_catalog


class Command(BaseCommand):
    help = (
        "Load every template spec (*.yaml, *.yml) of the catalog directory into the database. "
        "Idempotent; prints one line per template and exits non-zero when a file failed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dir",
            type=Path,
            default=None,
            help=f"Catalog directory (default: TEMPLATES_CATALOG_DIR, now {settings.TEMPLATES_CATALOG_DIR}).",
        )

    def handle(self, *args, **options):
        try:
            report = sync_catalog(options["dir"])
        except CatalogDirectoryError as exc:
            raise CommandError(str(exc)) from exc
        styles = {
            SyncStatus.ADDED: self.style.SUCCESS,
            SyncStatus.CHANGED: self.style.SUCCESS,
            SyncStatus.UNCHANGED: str,
            SyncStatus.FAILED: self.style.ERROR,
            SyncStatus.REMOVED: self.style.WARNING,
        }
        width = max((len(result.slug) for result in report.results), default=0)
        for result in report.results:
            details = []
            if result.version:
                details.append(f"{result.version} ({result.digest[:12]})")
            if result.problems:
                count = len(result.problems)
                details.append(f"{count} problem{'s' if count != 1 else ''}")
            if result.note:
                details.append(result.note)
            line = f"{result.status:<9}  {result.slug:<{width}}  {'; '.join(details)}".rstrip()
            self.stdout.write(styles[result.status](line))
            for problem in result.problems:
                self.stdout.write(f"    {problem}")
        self.stdout.write(f"{report.summary()} ({report.directory})")
        failed = len(report.of(SyncStatus.FAILED))
        if failed:
            raise CommandError(f"{failed} template file{'s' if failed != 1 else ''} failed to load")

"""`manage.py sync_templates`: its output and exit code."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import ManagementUtility, call_command
from django.core.management.base import CommandError

from tests.templates_catalog.conftest import SHIPPED_FILES

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("sync_templates", *args, stdout=out)
    return out.getvalue()


def test_it_prints_one_line_per_template_and_a_summary(catalog_dir):
    lines = run("--dir", str(catalog_dir)).splitlines()

    assert len(lines) == len(SHIPPED_FILES) + 1
    assert [line.split()[:2] for line in lines[:-1]] == [["added", path.stem] for path in SHIPPED_FILES]
    assert "1.1.0 (" in lines[0]
    assert lines[-1] == (
        f"{len(SHIPPED_FILES)} templates: {len(SHIPPED_FILES)} added, 0 changed, 0 unchanged, 0 failed, 0 removed "
        f"({catalog_dir.resolve()})"
    )


def test_it_reports_unchanged_on_a_second_run(catalog_dir):
    run("--dir", str(catalog_dir))

    lines = run("--dir", str(catalog_dir)).splitlines()

    assert {line.split()[0] for line in lines[:-1]} == {"unchanged"}


def test_it_prints_problems_and_fails_when_a_file_is_broken(catalog_dir):
    run("--dir", str(catalog_dir))
    path = catalog_dir / "static-nginx.yaml"
    path.write_text(path.read_text().replace("port: 80\n", "port: 0\n", 1))
    out = StringIO()

    with pytest.raises(CommandError, match="1 template file failed to load"):
        call_command("sync_templates", "--dir", str(catalog_dir), stdout=out)

    output = out.getvalue()
    assert "failed     static-nginx     1 problem; still serving version 1.1.0" in output
    assert "    static-nginx.yaml:" in output and "components[0].port: must be a port between 1 and 65535" in output
    assert "unchanged  django-postgres" in output
    assert "0 added, 0 changed, 3 unchanged, 1 failed, 0 removed" in output


def test_it_exits_with_status_1_when_a_file_failed(catalog_dir, capsys):
    (catalog_dir / "broken.yaml").write_text("slug: [")

    argv = ["manage.py", "sync_templates", "--dir", str(catalog_dir)]
    # What `manage.py` runs once Django is set up. Not `ManagementUtility.execute()`: it sets Django
    # up again, which binds the logging's console handler to this test's captured stderr, closed
    # after it: every later log line then fails with "I/O operation on closed file".
    with pytest.raises(SystemExit) as exited:
        ManagementUtility(argv).fetch_command("sync_templates").run_from_argv(argv)

    assert exited.value.code == 1
    captured = capsys.readouterr()
    assert "failed     broken" in captured.out
    assert "CommandError: 1 template file failed to load" in captured.err


def test_it_reports_removed_templates(catalog_dir):
    run("--dir", str(catalog_dir))
    (catalog_dir / "static-nginx.yaml").unlink()

    output = run("--dir", str(catalog_dir))

    assert "removed    static-nginx     file removed; template disabled" in output


def test_it_refuses_a_directory_that_does_not_exist(tmp_path):
    with pytest.raises(CommandError, match="is not a directory"):
        run("--dir", str(tmp_path / "nowhere"))

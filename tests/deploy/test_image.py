"""The container image, tested without building it (no Docker engine here): its entrypoint runs
the Procfile's commands, it installs only the runtime requirements, and its build-time
collectstatic works."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "deploy" / "entrypoint"
# Procfile entry -> the image's process argument.
PROCESSES = {"web": "web", "worker": "worker", "watcher": "watcher", "ssh-gateway": "ssh-gateway", "release": "migrate"}
APP_PACKAGES = ("diploi_site", "deployments", "templates_catalog", "cluster_emulator")


def entrypoint(*args: str, **env: str) -> list[str]:
    clean = {"PATH": os.environ["PATH"], "DIPLOI_ENTRYPOINT_DRY_RUN": "1", **env}
    result = subprocess.run(["sh", str(ENTRYPOINT), *args], env=clean, capture_output=True, text=True, check=True)
    return result.stdout.splitlines()


def procfile() -> dict[str, str]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            entries[name] = command.strip()
    return entries


def expanded(command: str) -> tuple[str, list[str]]:
    """A Procfile command as sh runs it with no variables set: (command, its leading VAR=value assignments)."""
    printed = subprocess.run(
        ["sh", "-c", f"printf '%s\\n' {command}"], env={"PATH": os.environ["PATH"]}, capture_output=True, text=True
    ).stdout.split()
    assignments = []
    while printed and re.fullmatch(r"[A-Z_]+=\S*", printed[0]):
        assignments.append(printed.pop(0))
    return " ".join(printed), assignments


def test_the_image_runs_the_procfiles_commands():
    entries = procfile()
    assert set(entries) == set(PROCESSES)
    for entry, process in PROCESSES.items():
        command, assignments = expanded(entries[entry])
        if entry == "release":
            # The Procfile's release phase runs in a shell: `a && b`.
            command = f"sh -c {entries[entry]}"
        first, *environment = entrypoint(process)
        assert first == command, entry
        assert environment == sorted([f"DIPLOI_PROCESS={process}", *assignments]), entry


def test_the_image_runs_any_other_command_as_given():
    assert entrypoint("python", "manage.py", "createsuperuser") == ["python manage.py createsuperuser"]


def test_the_images_web_port_and_worker_threads_come_from_the_environment():
    assert entrypoint("web", PORT="9000")[0].split()[4] == "9000"
    assert "--concurrency 3" in entrypoint("worker", WORKER_CONCURRENCY="3")[0]


def _sections() -> tuple[list[str], list[str]]:
    runtime = subprocess.run(
        ["sh", str(ROOT / "deploy" / "runtime-requirements"), str(ROOT / "requirements.txt")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    everything = (ROOT / "requirements.txt").read_text()

    def packages(text: str) -> list[str]:
        return [_normal(re.split(r"[\[=<>]", line)[0]) for line in text.splitlines() if line and line[0].isalnum()]

    return packages(runtime), packages(everything)


def _normal(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_image_installs_the_runtime_requirements_only():
    runtime, everything = _sections()
    assert "django" in runtime and "daphne" in runtime
    assert not {"pytest", "pytest-django", "ruff", "playwright", "pytest-playwright"} & set(runtime)
    assert len(everything) > len(runtime)


def _third_party_imports() -> set[str]:
    modules = set()
    for package in APP_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    modules |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    modules.add(node.module.split(".")[0])
    return {m for m in modules if m not in sys.stdlib_module_names and m not in APP_PACKAGES}


def test_everything_the_app_imports_is_a_runtime_requirement():
    runtime, _ = _sections()
    distributions = importlib.metadata.packages_distributions()
    missing = {}
    for module in _third_party_imports():
        names = {_normal(name) for name in distributions.get(module, [])}
        # Installed as a dependency of a pinned runtime package is fine, if that package is runtime.
        if not names & set(runtime) and not any(_required_by(name, runtime) for name in names):
            missing[module] = sorted(names)
    assert not missing, f"imported by the app but not in requirements.txt's runtime part: {missing}"


def _required_by(distribution: str, runtime: list[str]) -> bool:
    for package in runtime:
        requires = importlib.metadata.requires(package) or []
        if any(_normal(re.split(r"[\s\[=<>;!~]", r)[0]) == distribution for r in requires):
            return True
    return False


def test_the_dockerfile_runs_as_the_installs_user_from_a_pinned_base():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-\w+$", dockerfile, re.MULTILINE)
    assert "USER 10001:10001" in dockerfile
    assert 'ENTRYPOINT ["/app/deploy/entrypoint"]' in dockerfile
    assert "deploy/runtime-requirements" in dockerfile
    assert "collectstatic --noinput" in dockerfile


def test_collectstatic_gathers_compressed_assets_as_at_build_time(tmp_path):
    # The Dockerfile's build step, with its variables: no database, no Redis, a throwaway key.
    env = {
        "PATH": os.environ["PATH"],
        "SECRET_KEY": "collectstatic-only",
        "DIPLOI_DATA_DIR": str(tmp_path / "data"),
        "STATIC_ROOT": str(tmp_path / "static"),
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    for asset in ("vendor/htmx-2.0.8.min.js", "js/diploi.js", "css/diploi.css", "admin/css/base.css"):
        assert (tmp_path / "static" / asset).is_file(), asset
        assert (tmp_path / "static" / f"{asset}.gz").is_file(), asset

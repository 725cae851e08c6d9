"""Builds fixtures: a real Git repository on disk, and staging deployments of it."""

from __future__ import annotations

import subprocess

import pytest

from deployments import services


def git(*args: str, cwd) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repository(tmp_path):
    """A Git repository with one commit on main: ``.commit(message)`` adds one and returns its SHA."""
    path = tmp_path / "app.git"
    path.mkdir()
    git("init", "-q", "-b", "main", cwd=path)
    git("config", "user.email", "dev@example.com", cwd=path)
    git("config", "user.name", "Dev", cwd=path)

    class Repo:
        url = f"file://{path}"

        def commit(self, message: str) -> str:
            (path / "Dockerfile").write_text(f"FROM python:3.12-slim\n# {message}\n")
            git("add", "-A", cwd=path)
            git("commit", "-q", "-m", message, cwd=path)
            return git("rev-parse", "HEAD", cwd=path)

    repo = Repo()
    repo.first = repo.commit("first")
    return repo


@pytest.fixture
def built_project(make_project, repository):
    project = make_project("django-postgres")
    project.repository = repository.url
    project.save(update_fields=["repository"])
    return project


@pytest.fixture
def staging(built_project, developer):
    return services.deployment_create(project=built_project, name="staging", stage="staging", actor=developer)

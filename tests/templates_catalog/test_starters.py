"""The starter files shipped for templates answer what Diploi reads: the django-postgres status endpoint,
called as Django calls a view, read back with Diploi's own parser."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from django.db import connection
from django.test import RequestFactory

from deployments.appstatus.report import read_answer
from tests.conftest import need_service

STARTERS = Path(__file__).resolve().parents[2] / "templates_catalog" / "starters"


def starter(path: str):
    spec = importlib.util.spec_from_file_location("starter_module", STARTERS / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read(response) -> dict:
    found = read_answer(response.status_code, response["Content-Type"], response.content, truncated=False, max_bytes=1)
    assert not found.error, found.error
    return {item["identifier"]: (item["status"], item["message"]) for item in found.items}


@pytest.mark.django_db
def test_the_django_status_view_reports_the_process_the_database_and_migrations():
    status = starter("django-postgres/config/diploi_status.py")
    response = status.status(RequestFactory().get("/diploi/status/"))
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert json.loads(response.content)["diploiStatusVersion"] == 1
    assert read(response) == {
        "django": ("green", "Serving requests"),
        "database": ("green", "Connected"),
        "migrations": ("green", "All applied"),
    }
    assert status.status(RequestFactory().post("/diploi/status/")).status_code == 405


@pytest.mark.django_db(transaction=True)
def test_a_database_that_does_not_answer_is_yellow_while_starting_then_red(monkeypatch):
    if connection.vendor != "postgresql":
        need_service("a database server that stops answering needs PostgreSQL (set DATABASE_URL; CI does)")
    status = starter("django-postgres/config/diploi_status.py")
    monkeypatch.setitem(connection.settings_dict, "PORT", "1")  # nothing listens there
    connection.close()
    try:
        starting = read(status.status(RequestFactory().get("/diploi/status/")))
        assert starting["database"] == ("yellow", "Waiting for the database to start")
        assert starting["migrations"] == ("grey", "Waiting for the database")
        monkeypatch.setattr(status, "STARTED", status.STARTED - status.STARTUP_SECONDS)
        later = read(status.status(RequestFactory().get("/diploi/status/")))
        assert later["database"][0] == "red" and later["database"][1].startswith("Cannot reach the database")
    finally:
        connection.close()

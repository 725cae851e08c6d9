"""Diploi's status endpoint for a Django project: the django-postgres template's status_url
(`http://app:8000/diploi/status/`).

Copy this file into your project's `config/` package and add it to `config/urls.py`:

    from config import diploi_status

    urlpatterns += [path("diploi/status/", diploi_status.status)]

It answers in Diploi's status format (docs/templates.md): the web process, the database
connection, and whether migrations are waiting to be applied. A check that fails within
STARTUP_SECONDS of the process starting is yellow, not red (the database may still be starting).
Diploi asks it every few seconds from inside the cluster (through the API server), so keep it
cheap, and keep it out of any login requirement.
"""

from __future__ import annotations

import time

from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse
from django.views.decorators.http import require_GET

STARTED = time.monotonic()
STARTUP_SECONDS = 30


def _database() -> tuple[str, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as error:
        return "red", f"Cannot reach the database: {str(error).strip()[:200]}"
    return "green", "Connected"


def _migrations() -> tuple[str, str]:
    try:
        executor = MigrationExecutor(connection)
        waiting = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError:
        return "gray", "Unknown until the database answers"
    if waiting:
        return "yellow", f"{len(waiting)} not applied: run the “Apply migrations” action"
    return "green", "All applied"


@require_GET
def status(request):
    database, database_message = _database()
    migrations, migrations_message = _migrations() if database == "green" else ("gray", "Waiting for the database")
    if database == "red" and time.monotonic() - STARTED < STARTUP_SECONDS:
        database, database_message = "yellow", "Waiting for the database to start"
    items = [
        {
            "identifier": "django",
            "name": "Django",
            "description": "The web process",
            "status": "green",
            "message": "Serving requests",
        },
        {
            "identifier": "database",
            "name": "PostgreSQL",
            "description": "The database connection",
            "status": database,
            "message": database_message,
        },
        {
            "identifier": "migrations",
            "name": "Migrations",
            "description": "Django's migrations, applied to the database",
            "status": migrations,
            "message": migrations_message,
        },
    ]
    return JsonResponse({"diploiStatusVersion": 1, "items": items})

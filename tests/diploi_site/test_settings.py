"""Settings come from the environment: check them in fresh processes, as deployments see them."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIGURING_VARIABLES = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "HTTPS", "DJANGO_ALLOW_ASYNC_UNSAFE")
PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "x" * 60 + "production-test-key-0123456789",
    "ALLOWED_HOSTS": "diploi.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://diploi.example.com",
    "REDIS_URL": "redis://127.0.0.1:6379/14",
    "BASE_DOMAIN": "apps.example.com",
    "SECURE_HSTS_PRELOAD": "1",
}


def run_django(code: str, env: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in CONFIGURING_VARIABLES}
    clean.update({"DJANGO_SETTINGS_MODULE": "diploi_site.settings", "DIPLOI_DATA_DIR": str(tmp_path)}, **env)
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); from django.conf import settings; {code}"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_it_refuses_to_start_in_production_without_a_secret_key(tmp_path):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"}
    result = run_django("print('started')", env, tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_it_generates_the_embedded_secret_key_once_and_keeps_it(tmp_path):
    first = run_django("print(settings.SECRET_KEY)", {}, tmp_path)
    second = run_django("print(settings.SECRET_KEY)", {}, tmp_path)
    assert first.returncode == 0, first.stderr
    key = first.stdout.strip()
    assert len(key) >= 50
    assert second.stdout.strip() == key
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_it_runs_embedded_on_sqlite_memory_layer_and_memory_broker(tmp_path):
    result = run_django(
        "print(settings.DATABASES['default']['ENGINE'], settings.CHANNEL_LAYERS['default']['BACKEND'],"
        " settings.CELERY_BROKER_URL, settings.SESSION_COOKIE_SECURE)",
        {},
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    engine, layer, broker, secure = result.stdout.split()
    assert engine == "django.db.backends.sqlite3"
    assert layer == "diploi_site.channel_layers.InProcessChannelLayer"
    assert broker.startswith("memory://")
    assert secure == "False"


def test_it_uses_postgres_and_redis_when_configured(tmp_path):
    env = dict(PRODUCTION_ENV, DATABASE_URL="postgres://postgres@127.0.0.1:5432/diploi")
    result = run_django(
        "print(settings.DATABASES['default']['ENGINE'], settings.CHANNEL_LAYERS['default']['BACKEND'],"
        " settings.CELERY_BROKER_URL)",
        env,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    engine, layer, broker = result.stdout.split()
    assert engine == "django.db.backends.postgresql"
    assert layer == "channels_redis.pubsub.RedisPubSubChannelLayer"
    assert broker == "redis://127.0.0.1:6379/14"


def test_a_redis_keyspace_names_the_channel_prefix_the_queue_and_celerys_keys(tmp_path):
    show = (
        "print(settings.CHANNEL_LAYERS['default']['CONFIG']['prefix'], settings.CELERY_TASK_DEFAULT_QUEUE,"
        " settings.CELERY_BROKER_TRANSPORT_OPTIONS.get('global_keyprefix'))"
    )
    alone = {"PYTEST_XDIST_WORKER": "", "REDIS_KEYSPACE": ""}
    result = run_django(show, dict(PRODUCTION_ENV, **alone), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["diploi14", "diploi", "None"]

    # A parallel test worker, and every process its tests start, keeps to its own.
    result = run_django(show, dict(PRODUCTION_ENV, PYTEST_XDIST_WORKER="gw3"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["diploi14gw3", "diploi-gw3", "gw3:"]

    result = run_django(show, dict(PRODUCTION_ENV, REDIS_KEYSPACE="blue", PYTEST_XDIST_WORKER="gw3"), tmp_path)
    assert result.stdout.split() == ["diploi14blue", "diploi-blue", "blue:"]


def test_it_passes_the_deployment_checklist_with_production_settings(tmp_path):
    env = dict(PRODUCTION_ENV, DATABASE_URL="postgres://postgres@127.0.0.1:5432/diploi")
    clean = {k: v for k, v in os.environ.items() if k not in CONFIGURING_VARIABLES}
    clean.update(env, DIPLOI_DATA_DIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_it_rejects_a_malformed_boolean(tmp_path):
    result = run_django("print(settings.DEBUG)", {"DEBUG": "maybe"}, tmp_path)
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_asked_for_prepared_statements_a_repeated_query_is_planned_once(tmp_path):
    three_queries_then_count_the_prepared = repr(
        "from django.db import connection\n"
        "for _ in range(3):\n"
        "    with connection.cursor() as cursor:\n"
        "        cursor.execute('SELECT %s::int + 1', [1])\n"
        "with connection.cursor() as cursor:\n"
        "    cursor.execute('SELECT count(*) FROM pg_prepared_statements')\n"
        "    print(cursor.fetchone()[0])\n"
    )
    code = f"exec({three_queries_then_count_the_prepared})"
    env = dict(PRODUCTION_ENV, DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres")
    by_default = run_django(code, env, tmp_path)
    assert by_default.returncode == 0, by_default.stderr
    assert by_default.stdout.split() == ["0"]  # parameters bound client-side: nothing prepared
    asked = run_django(code, {**env, "DB_PREPARED_STATEMENTS": "1"}, tmp_path)
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.split() == ["1"]

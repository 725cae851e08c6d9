import pytest

from deployments.cluster.environment import EnvironmentError, missing_secrets, resolve_environment
from templates_catalog.validation import parse_template

SPEC = parse_template(
    """
slug: shop
name: Shop
description: A shop.
version: "1"
stages: {development: source, production: build}
components:
  - id: web
    name: Web
    image: python:3.12-slim
    port: 8000
    code_path: /app
    dev_command: [python, -m, http.server]
    env:
      DATABASE_URL: {type: secret, value: "postgres://${DB_USER}:${POSTGRES_PASSWORD}@postgres/${POSTGRES_DB}"}
      PRICE: {type: string, value: "$$5 for ${DB_USER}"}
      SECRET_KEY: {type: secret}
    imports:
      - postgres.POSTGRES_*
      - {from: postgres.POSTGRES_USER, as: DB_USER}
    storage: {code: {path: /app, size: 1Gi, stages: [development]}}
addons:
  - id: postgres
    name: PostgreSQL
    image: postgres:16
    port: 5432
    data_path: /var/lib/postgresql/data/pgdata
    env:
      POSTGRES_USER: shop
      POSTGRES_PASSWORD: {type: secret}
      POSTGRES_DB: shop
      POSTGRES_HINT: {type: string, value: "literally $${POSTGRES_DB}"}
    storage: {data: {path: /var/lib/postgresql/data, size: 1Gi}}
""",
    "shop.yaml",
)


def resolve(generated, overrides=None):
    return resolve_environment(
        SPEC, "production", generated=generated, overrides=overrides or {}, present={"web", "postgres"}
    )


def test_it_generates_each_secret_once_and_never_again():
    first = missing_secrets(SPEC, {})
    assert set(first) == {"web.SECRET_KEY", "postgres.POSTGRES_PASSWORD"}
    assert all(len(value) >= 32 for value in first.values())
    assert missing_secrets(SPEC, first) == {}
    assert set(missing_secrets(SPEC, {"web.SECRET_KEY": "kept"})) == {"postgres.POSTGRES_PASSWORD"}


def test_it_imports_with_wildcards_and_renames_and_resolves_references():
    secrets = missing_secrets(SPEC, {})
    env = resolve(secrets)
    web = env["web"]
    assert web["POSTGRES_USER"] == web["DB_USER"] == "shop"
    assert web["POSTGRES_PASSWORD"] == secrets["postgres.POSTGRES_PASSWORD"]
    assert web["DATABASE_URL"] == f"postgres://shop:{secrets['postgres.POSTGRES_PASSWORD']}@postgres/shop"
    assert "SECRET_KEY" not in env["postgres"]


def test_it_reads_double_dollars_as_one_and_never_interpolates_an_imported_value_twice():
    env = resolve(missing_secrets(SPEC, {}))
    assert env["web"]["PRICE"] == "$5 for shop"
    assert env["postgres"]["POSTGRES_HINT"] == "literally ${POSTGRES_DB}"
    assert env["web"]["POSTGRES_HINT"] == "literally ${POSTGRES_DB}"


def test_it_lets_deployment_overrides_win_and_flow_into_imports():
    env = resolve(missing_secrets(SPEC, {}), {"postgres": {"POSTGRES_DB": "orders"}, "web": {"EXTRA": "1"}})
    assert env["postgres"]["POSTGRES_DB"] == env["web"]["POSTGRES_DB"] == "orders"
    assert env["web"]["DATABASE_URL"].endswith("/orders")
    assert env["web"]["EXTRA"] == "1"


def test_it_refuses_to_render_a_generated_secret_that_was_never_stored():
    with pytest.raises(EnvironmentError, match="postgres.POSTGRES_PASSWORD was never stored"):
        resolve({"web.SECRET_KEY": "x"})

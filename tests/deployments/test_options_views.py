"""The Options tab and its forms, through HTTP: rename, environment and secrets, add-ons,
custom domains, enable/disable and delete."""

from __future__ import annotations

import pytest
from django.urls import reverse

from deployments import services
from deployments.cluster.environment import resolve_environment
from deployments.models import ActivityEntry, Deployment, DeploymentState, Operation, Role


@pytest.fixture
def project(make_project):
    return make_project("fastapi-redis", slug="shop")


@pytest.fixture
def deployment(project, developer):
    return services.deployment_create(
        project=project, name="feature-x", stage="development", actor=developer, addons=["redis"]
    )


@pytest.fixture
def admin_client(client, make_member):
    client.force_login(make_member(Role.ADMIN))
    return client


def url(name: str, deployment: Deployment) -> str:
    return reverse(name, args=[deployment.pk])


def fresh(deployment: Deployment) -> Deployment:
    return Deployment.objects.get(pk=deployment.pk)


def secret_values(deployment: Deployment) -> list[str]:
    """Every value a secret variable of the deployment resolves to."""
    deployment = fresh(deployment)
    environment = resolve_environment(
        deployment.spec,
        deployment.stage,
        generated=deployment.generated_secrets,
        overrides=deployment.env_overrides,
        present={"api", "redis"},
    )
    secret_names = {"SESSION_SECRET", "REDIS_PASSWORD", "REDIS_URL"}
    values = [value for variables in environment.values() for name, value in variables.items() if name in secret_names]
    assert len(values) >= 4  # api's SESSION_SECRET and imported REDIS_URL, redis's REDIS_PASSWORD and REDIS_URL
    return values


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


# ----------------------------------------------------------------------------- rename


def test_it_renames(developer_client, deployment):
    response = developer_client.post(url("deployment_rename", deployment), {"name": "feature-z"}, follow=True)

    assert response.redirect_chain == [(url("deployment_options", deployment), 302)]
    assert "Renamed to “feature-z”." in messages_of(response)
    assert fresh(deployment).name == "feature-z"
    operation = deployment.operations.get(kind=Operation.Kind.RECONCILE)
    assert operation.message == "Renamed “feature-x” to “feature-z”"
    assert "<h1>feature-z</h1>" in response.content.decode()


@pytest.mark.parametrize(
    "name, message",
    [
        ("Feature Z", "The name must be lowercase."),
        ("taken", "already has a deployment called “taken”"),
        ("", "required"),
    ],
)
def test_it_refuses_a_bad_new_name_on_the_form(developer_client, deployment, project, developer, name, message):
    services.deployment_create(project=project, name="taken", stage="staging", actor=developer)

    response = developer_client.post(url("deployment_rename", deployment), {"name": name})

    assert response.status_code == 422
    assert message in " ".join(response.context["rename_form"].errors["name"])
    if name:
        assert f'value="{name}"' in response.content.decode()  # what was typed is kept
    assert fresh(deployment).name == "feature-x"
    assert not deployment.operations.filter(kind=Operation.Kind.RECONCILE).exists()


# ----------------------------------------------------------------------------- environment and secrets


def test_it_saves_environment_overrides(developer_client, deployment):
    response = developer_client.post(
        url("deployment_environment", deployment), {"env": "api.LOG_LEVEL=warning\nCACHE_TTL_SECONDS=60\nredis.X=1"}
    )

    assert response.status_code == 302
    assert fresh(deployment).env_overrides == {
        "api": {"LOG_LEVEL": "warning", "CACHE_TTL_SECONDS": "60"},
        "redis": {"X": "1"},
    }
    page = developer_client.get(response["Location"]).content.decode()
    assert "Environment saved; the services restart with it." in page
    assert '<tr><td class="mono">LOG_LEVEL</td>\n            <td class="mono env-value">warning</td>' in page


def test_it_goes_back_to_the_templates_value_when_a_line_is_removed(developer_client, deployment, developer):
    services.deployment_update(deployment=deployment, actor=developer, env_overrides={"api": {"LOG_LEVEL": "warning"}})

    developer_client.post(url("deployment_environment", deployment), {"env": ""})

    assert fresh(deployment).env_overrides == {}


@pytest.mark.parametrize(
    "env, message",
    [
        ("LOG_LEVEL warning", "Line 1: write service.NAME=value"),
        ("nosuch.X=1", "There is no component or add-on “nosuch”."),
        ("api.9LIVES=1", "“9LIVES” is not a valid variable name"),
    ],
)
def test_it_refuses_bad_environment_lines_on_the_form(developer_client, deployment, env, message):
    response = developer_client.post(url("deployment_environment", deployment), {"env": env})

    assert response.status_code == 422
    assert message in " ".join(response.context["env_form"].errors["env"])
    assert env in response.content.decode()
    assert fresh(deployment).env_overrides == {}
    assert not deployment.operations.filter(kind=Operation.Kind.RECONCILE).exists()


@pytest.mark.parametrize("role", [Role.VIEWER, Role.DEVELOPER, Role.ADMIN])
def test_it_masks_every_secret_in_the_page(client, make_member, deployment, role):
    client.force_login(make_member(role))

    page = client.get(url("deployment_options", deployment)).content.decode()

    for value in secret_values(deployment):
        assert value not in page
    assert page.count('<span class="masked">••••••••</span>') == 4
    assert '<td class="mono">LOG_LEVEL</td>\n            <td class="mono env-value">debug</td>' in page
    assert ("Reveal</button>" in page) == (role != Role.VIEWER)


def test_it_masks_a_secret_set_as_an_override_too(developer_client, deployment, developer):
    services.deployment_update(
        deployment=deployment, actor=developer, env_overrides={"api": {"SESSION_SECRET": "hunter2-override"}}
    )

    page = developer_client.get(url("deployment_options", deployment)).content.decode()

    assert "hunter2-override" not in page
    # Saving the form as shown keeps the secret.
    response = developer_client.post(url("deployment_environment", deployment), {"env": _textarea(page)})
    assert response.status_code == 302
    assert fresh(deployment).env_overrides == {"api": {"SESSION_SECRET": "hunter2-override"}}


def test_it_replaces_a_masked_secret_when_a_new_value_is_typed(developer_client, deployment, developer):
    services.deployment_update(deployment=deployment, actor=developer, env_overrides={"api": {"SESSION_SECRET": "old"}})

    developer_client.post(url("deployment_environment", deployment), {"env": "api.SESSION_SECRET=new"})

    assert fresh(deployment).env_overrides == {"api": {"SESSION_SECRET": "new"}}


def test_it_refuses_the_mask_for_a_secret_that_has_no_value_to_keep(developer_client, deployment):
    response = developer_client.post(
        url("deployment_environment", deployment), {"env": "redis.REDIS_PASSWORD=••••••••"}
    )

    assert response.status_code == 422
    assert "redis.REDIS_PASSWORD: type the value" in " ".join(response.context["env_form"].errors["env"])
    assert fresh(deployment).env_overrides == {}


def _textarea(page: str) -> str:
    start = page.index(">", page.index('<textarea name="env"')) + 1
    import html

    return html.unescape(page[start : page.index("</textarea>", start)]).strip()


def test_it_reveals_a_secret_on_request_and_records_it(developer_client, deployment, developer):
    expected = resolve_environment(
        deployment.spec, deployment.stage, generated=deployment.generated_secrets, overrides={}, present={"api"}
    )["api"]["SESSION_SECRET"]

    response = developer_client.post(url("deployment_reveal", deployment), {"service": "api", "name": "SESSION_SECRET"})

    assert response.status_code == 200
    assert response.content.decode().strip() == f'<code class="revealed">{expected}</code>'
    entry = ActivityEntry.objects.get(action="secret.revealed")
    assert entry.actor == developer and entry.deployment_id == deployment.pk
    assert entry.message == f"{developer.username} revealed api.SESSION_SECRET"
    assert expected not in entry.message
    activity = developer_client.get(url("deployment_activity", deployment)).content.decode()
    assert "revealed api.SESSION_SECRET" in activity


@pytest.mark.parametrize("service, name", [("api", "NOPE"), ("nosuch", "SESSION_SECRET"), ("", "")])
def test_it_reveals_nothing_for_an_unknown_variable(developer_client, deployment, service, name):
    response = developer_client.post(url("deployment_reveal", deployment), {"service": service, "name": name})

    assert response.status_code == 404
    assert not ActivityEntry.objects.filter(action="secret.revealed").exists()


# ----------------------------------------------------------------------------- add-ons


def test_it_asks_whether_to_delete_storage_when_removing_an_add_on(developer_client, deployment):
    page = developer_client.get(url("deployment_options", deployment)).content.decode()

    assert '<input type="checkbox" name="addons" value="redis" checked' in page
    assert "also delete its storage permanently (data (1Gi))" in page


def test_it_removes_an_add_on_and_keeps_its_storage(developer_client, deployment, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = developer_client.post(url("deployment_addons", deployment), {}, follow=True)

    assert "Add-ons saved." in messages_of(response)
    assert fresh(deployment).enabled_addons == []
    kinds = list(deployment.operations.values_list("kind", flat=True))
    assert sorted(kinds) == [Operation.Kind.CREATE, Operation.Kind.RECONCILE]
    assert ActivityEntry.objects.get(action="deployment.updated").data["storage_deleted"] == []
    assert len(callbacks) == 2  # the reconcile and the live update: no storage deletion


def test_it_removes_an_add_on_and_deletes_its_storage_when_asked(
    developer_client, deployment, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = developer_client.post(url("deployment_addons", deployment), {"delete_storage": "redis"}, follow=True)

    assert "Add-ons saved. Deleting the storage of redis." in messages_of(response)
    storage = deployment.operations.get(kind=Operation.Kind.DELETE_STORAGE)
    assert storage.target == "redis" and storage.status == Operation.Status.PENDING
    assert deployment.operations.filter(kind=Operation.Kind.RECONCILE).count() == 1
    assert ActivityEntry.objects.get(action="deployment.updated").data["storage_deleted"] == ["redis"]
    assert len(callbacks) == 3  # reconcile, delete_storage, live update


def test_it_never_deletes_the_storage_of_an_add_on_that_stays(developer_client, deployment):
    developer_client.post(url("deployment_addons", deployment), {"addons": "redis", "delete_storage": "redis"})

    assert fresh(deployment).enabled_addons == ["redis"]
    assert not deployment.operations.filter(kind=Operation.Kind.DELETE_STORAGE).exists()


def test_it_adds_an_add_on_back(developer_client, deployment, developer):
    services.deployment_update(deployment=deployment, actor=developer, addons=[])

    developer_client.post(url("deployment_addons", deployment), {"addons": "redis"})

    assert fresh(deployment).enabled_addons == ["redis"]


def test_it_refuses_an_add_on_the_template_does_not_offer(developer_client, deployment):
    response = developer_client.post(
        url("deployment_addons", deployment), {"addons": ["redis", "postgres"]}, follow=True
    )

    messages = messages_of(response)
    assert any("“postgres” is not an optional add-on of this template." in message for message in messages)
    assert not any("saved" in message for message in messages)
    assert fresh(deployment).enabled_addons == ["redis"]
    assert not deployment.operations.filter(kind=Operation.Kind.RECONCILE).exists()


# ----------------------------------------------------------------------------- custom domains


def test_it_saves_custom_domains_and_says_how_to_point_them(developer_client, deployment, settings):
    settings.EDGE_HOST = "edge.apps.example.com"

    response = developer_client.post(url("deployment_domains", deployment), {"custom_domains": "WWW.Example.com\n\n"})

    assert response.status_code == 302
    assert fresh(deployment).custom_domains == ["www.example.com"]
    page = developer_client.get(response["Location"]).content.decode()
    assert "Custom domains saved." in page
    assert '<span class="mono">www.example.com</span> · TLS certificate: pending' in page
    assert "<code>CNAME edge.apps.example.com</code>" in page


@pytest.mark.parametrize(
    "domains, message",
    [
        ("bad_host.example.com", "has an invalid part “bad_host”"),
        ("app.diploi.localhost", "which Diploi assigns itself"),
        ("a.example.com\na.example.com", "is listed twice"),
    ],
)
def test_it_refuses_bad_custom_domains_on_the_form(developer_client, deployment, domains, message):
    response = developer_client.post(url("deployment_domains", deployment), {"custom_domains": domains})

    assert response.status_code == 422
    assert message in " ".join(response.context["domains_form"].errors["custom_domains"])
    assert fresh(deployment).custom_domains == []


def test_it_saves_a_custom_domain_while_other_deployments_exist(developer_client, deployment, project, developer):
    services.deployment_create(project=project, name="other", stage="staging", actor=developer)

    response = developer_client.post(url("deployment_domains", deployment), {"custom_domains": "www.example.com"})

    assert response.status_code == 302


# ----------------------------------------------------------------------------- enable / disable


def test_it_disables_and_enables_again(developer_client, deployment):
    response = developer_client.post(url("deployment_toggle", deployment), {"enabled": "0"}, follow=True)

    assert "Disabled: scaled to zero. Storage is kept." in messages_of(response)
    assert fresh(deployment).enabled is False
    page = response.content.decode()
    assert '<span class="badge">Disabled</span>' in page
    assert (
        '<input type="hidden" name="enabled" value="1"><button type="submit" class="button primary">Enable</button>'
        in page
    )

    response = developer_client.post(url("deployment_toggle", deployment), {"enabled": "1"}, follow=True)

    assert "Enabled: starting again." in messages_of(response)
    assert fresh(deployment).enabled is True
    assert deployment.operations.filter(kind=Operation.Kind.RECONCILE).count() == 2


def test_it_refuses_to_change_a_deployment_being_deleted(developer_client, deployment, admin_client):
    admin_client.post(url("deployment_delete", deployment), {"confirm": "feature-x"})

    for name, data in (
        ("deployment_toggle", {"enabled": "0"}),
        ("deployment_rename", {"name": "other"}),
        ("deployment_environment", {"env": "api.X=1"}),
        ("deployment_domains", {"custom_domains": "a.example.com"}),
        ("deployment_addons", {}),
    ):
        response = developer_client.post(url(name, deployment), data, follow=True)
        assert response.status_code in (200, 422), name
        assert "This deployment is being deleted." in response.content.decode(), name
    restart = developer_client.post(url("deployment_restart", deployment))
    assert restart.status_code == 409
    after = fresh(deployment)
    assert after.enabled and after.name == "feature-x" and after.env_overrides == {}
    assert after.enabled_addons == ["redis"] and after.custom_domains == []


# ----------------------------------------------------------------------------- delete


def test_it_lists_what_a_delete_destroys(admin_client, deployment):
    page = admin_client.get(url("deployment_options", deployment)).content.decode()

    assert f"<code>{deployment.namespace}</code>" in page
    assert "the volume <code>code-api-0</code> (3Gi) of api" in page
    assert "the volume <code>data-redis-0</code> (1Gi) of redis" in page
    assert "Type the deployment&#x27;s name to confirm" in page


def test_it_shows_a_developer_no_delete(developer_client, deployment):
    page = developer_client.get(url("deployment_options", deployment)).content.decode()
    assert url("deployment_delete", deployment) not in page


@pytest.mark.parametrize("typed", ["", "feature", "Feature-X", "feature-x-extra"])
def test_it_deletes_only_when_the_exact_name_is_typed(
    admin_client, deployment, typed, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(url("deployment_delete", deployment), {"confirm": typed})

    assert response.status_code == 422
    assert response.context["delete_form"].errors["confirm"]
    assert fresh(deployment).state == DeploymentState.CREATING
    assert not deployment.operations.filter(kind=Operation.Kind.DELETE).exists()
    assert callbacks == []


def test_it_deletes_with_the_typed_name(admin_client, deployment, project, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(url("deployment_delete", deployment), {"confirm": " feature-x "})

    assert response.status_code == 302
    assert response["Location"] == reverse("project", args=[project.pk])
    assert fresh(deployment).state == DeploymentState.DELETING
    assert deployment.operations.get(kind=Operation.Kind.DELETE).status == Operation.Status.PENDING
    assert ActivityEntry.objects.filter(action="deployment.delete_requested").exists()
    assert len(callbacks) == 2  # the delete task and the live update
    page = admin_client.get(response["Location"]).content.decode()
    assert "Deleting “feature-x” with all its storage." in page
    assert '<span class="badge">Deleting…</span>' in page


def test_it_reveals_nothing_of_an_addon_the_deployment_does_not_run(developer_client, deployment, developer):
    services.deployment_update(deployment=deployment, actor=developer, addons=[])

    response = developer_client.post(
        url("deployment_reveal", deployment), {"service": "redis", "name": "REDIS_PASSWORD"}
    )

    assert response.status_code == 404
    assert response.content.decode() == "redis is not part of this deployment."
    assert not ActivityEntry.objects.filter(action="secret.revealed").exists()


def test_it_explains_a_refusal_on_the_error_page(client, make_member, deployment):
    from deployments.models import Role

    client.force_login(make_member(Role.VIEWER))

    response = client.post(url("deployment_toggle", deployment), {"enabled": "0"})

    assert response.status_code == 403
    assert "this needs developer" in response.content.decode()

"""The action buttons and pages: who sees and may press them, the confirmation step, a second click."""

from __future__ import annotations

import pytest
from django.urls import reverse

from deployments.actions import services
from deployments.actions.models import ActionRun
from deployments.models import Role

pytestmark = pytest.mark.django_db


def run_url(deployment) -> str:
    return reverse("action_run_request", args=[deployment.pk])


def test_a_developer_runs_an_action_and_lands_on_its_page(acting, developer_client):
    deployment = acting().deployment
    page = developer_client.get(reverse("deployment", args=[deployment.pk])).content.decode()
    assert 'aria-label="Run Say hello"' in page and "asks first" in page
    response = developer_client.post(run_url(deployment), {"action": "Say hello"})
    run = ActionRun.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("action_run", args=[deployment.pk, run.pk])
    page = developer_client.get(response["Location"]).content.decode()
    assert "echo to stdout; echo to stderr &gt;&amp;2;" in page and "Queued" in page
    assert f'ws-connect="/ws/deployments/{deployment.pk}/actions/{run.pk}/"' in page
    # The Overview now links the running one instead of a second Run button.
    page = developer_client.get(reverse("deployment", args=[deployment.pk])).content.decode()
    assert 'data-action-running="Say hello"' in page


def test_htmx_buttons_navigate_the_client(acting, developer_client):
    deployment = acting().deployment
    response = developer_client.post(run_url(deployment), {"action": "Say hello"}, headers={"HX-Request": "true"})
    run = ActionRun.objects.get()
    assert response["HX-Redirect"] == reverse("action_run", args=[deployment.pk, run.pk])
    response = developer_client.post(run_url(deployment), {"action": "Nope"}, headers={"HX-Request": "true"})
    assert response.status_code == 409 and "has no action “Nope”" in response.content.decode()


def test_a_second_click_shows_the_running_one(acting, developer_client):
    deployment = acting().deployment
    first = developer_client.post(run_url(deployment), {"action": "Sleep"})
    second = developer_client.post(run_url(deployment), {"action": "Sleep"}, follow=True)
    assert ActionRun.objects.count() == 1
    assert second.redirect_chain[-1][0] == first["Location"]
    assert "“Sleep” is already running: here it is." in second.content.decode()


def test_an_action_that_asks_first_runs_only_once_confirmed(acting, developer_client):
    deployment = acting().deployment
    response = developer_client.post(run_url(deployment), {"action": "Drop everything"}, follow=True)
    assert not ActionRun.objects.exists()
    page = response.content.decode()
    assert "Run “Drop everything” on dev?" in page and 'name="confirmed" value="1"' in page
    response = developer_client.post(run_url(deployment), {"action": "Drop everything", "confirmed": "1"})
    assert response.status_code == 302 and ActionRun.objects.get().confirmed


def test_a_viewer_sees_no_button_and_is_refused(acting, client, make_member):
    deployment = acting().deployment
    client.force_login(make_member(Role.VIEWER))
    page = client.get(reverse("deployment", args=[deployment.pk])).content.decode()
    assert "Say hello" in page and 'aria-label="Run Say hello"' not in page
    assert client.post(run_url(deployment), {"action": "Say hello"}).status_code == 403
    assert client.get(reverse("action_confirm", args=[deployment.pk]) + "?action=Drop+everything").status_code == 403
    assert not ActionRun.objects.exists()
    # A viewer may watch a run (like logs) but not cancel it.
    run, _ = services.action_run_start(deployment=deployment, action_name="Sleep", actor=None)
    page = client.get(reverse("action_run", args=[deployment.pk, run.pk])).content.decode()
    assert "Sleep" in page and ">Cancel<" not in page
    assert client.post(reverse("action_run_cancel", args=[deployment.pk, run.pk])).status_code == 403
    assert ActionRun.objects.get(pk=run.pk).state == ActionRun.State.QUEUED


def test_outsiders_get_404_everywhere(acting, client, make_user, developer):
    deployment = acting().deployment
    run, _ = services.action_run_start(deployment=deployment, action_name="Sleep", actor=developer)
    client.force_login(make_user("outsider"))
    assert client.post(run_url(deployment), {"action": "Say hello"}).status_code == 404
    for name in ("action_run", "action_run_output"):
        assert client.get(reverse(name, args=[deployment.pk, run.pk])).status_code == 404
    assert client.post(reverse("action_run_cancel", args=[deployment.pk, run.pk])).status_code == 404
    assert ActionRun.objects.get(pk=run.pk).state == ActionRun.State.QUEUED


def test_a_run_of_another_deployment_is_not_found_under_this_one(acting, developer_client, developer):
    one, other = acting(name="one").deployment, acting(name="two").deployment
    run, _ = services.action_run_start(deployment=other, action_name="Sleep", actor=developer)
    assert developer_client.get(reverse("action_run", args=[one.pk, run.pk])).status_code == 404


def test_cancel_of_a_queued_run_ends_it_and_the_activity_tab_lists_runs(acting, developer_client):
    deployment = acting().deployment
    developer_client.post(run_url(deployment), {"action": "Sleep"})
    run = ActionRun.objects.get()
    response = developer_client.post(reverse("action_run_cancel", args=[deployment.pk, run.pk]))
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.state == ActionRun.State.CANCELLED and "before it started" in run.message
    page = developer_client.get(reverse("deployment_activity", args=[deployment.pk])).content.decode()
    assert f'data-run="{run.pk}"' in page and "Cancelled" in page and "asked to run “Sleep” in app" in page
    download = developer_client.get(reverse("action_run_output", args=[deployment.pk, run.pk]))
    assert download["Content-Disposition"] == f'attachment; filename="dev-action-{run.pk}.log"'


def test_a_disabled_deployment_offers_no_run(acting, developer_client, developer):
    from deployments import services as deployment_services

    deployment = acting().deployment
    deployment_services.deployment_update(deployment=deployment, actor=developer, enabled=False)
    page = developer_client.get(reverse("deployment", args=[deployment.pk])).content.decode()
    assert 'aria-label="Run Say hello"' not in page
    response = developer_client.post(run_url(deployment), {"action": "Say hello"}, follow=True)
    assert "is disabled: no container runs" in response.content.decode()

"""Actions in Chromium: a developer runs one from the Overview and sees its output and exit status live,
confirms one that asks first, cancels one, sees one time out, and a second click shows the running one;
a viewer has no button."""

from __future__ import annotations

from playwright.sync_api import expect

from deployments import services
from deployments.models import Deployment, Role
from tests.browser.test_journey import sign_in
from tests.deployments.actions.conftest import with_test_actions
from tests.deployments.logs.conftest import Running
from tests.support import wait_for


def test_a_developer_runs_confirms_cancels_and_times_out_actions_and_a_viewer_cannot(
    diploi_on_emulator, page, browser, console_errors, make_member, make_project, screenshot_on_failure
):
    url = diploi_on_emulator.url
    dana = make_member(Role.DEVELOPER, username="dana")
    make_member(Role.VIEWER, username="vic")
    deployment = services.deployment_create(project=make_project(), name="dev", stage="development", actor=dana)
    wait_for(lambda: Deployment.objects.get(pk=deployment.pk).applied_generation, timeout=60, what="the worker's apply")
    with_test_actions(deployment)
    wait_for(lambda: Running(deployment, "app").running_pods(), timeout=60, what="a running app pod")
    overview = f"{url}/deployments/{deployment.pk}/"

    sign_in(page, url, "dana")
    page.goto(overview)
    screenshot_on_failure.append(("overview", overview))
    actions = page.locator("#actions")
    # The component's node in the status tree offers the same buttons (once the watcher stored a tree).
    # (A CSS locator: a green node is closed, and get_by_role skips what a closed <details> hides.)
    tree_button = page.locator('#status-tree [data-node="services"] button[aria-label="Run Say hello"]')
    expect(tree_button).to_have_count(1, timeout=30_000)
    # Output and exit status, live on the run's page.
    actions.get_by_role("button", name="Run Say hello").click()
    run = page.locator("#action-run")
    expect(run).to_have_attribute("data-state", "failed", timeout=30_000)
    expect(run.locator("[data-output]")).to_contain_text("to stdout")
    expect(run.locator("[data-output]")).to_contain_text("to stderr")
    expect(run.locator("[data-exit-status]")).to_have_text("3")
    expect(run).to_contain_text("Exited with status 3.")
    expect(run).to_contain_text("the oldest ready pod of app")

    # The template's own action, answered by the emulator's stand-in.
    page.goto(overview)
    actions.get_by_role("button", name="Run Apply migrations").click()
    expect(run).to_have_attribute("data-state", "succeeded", timeout=30_000)
    expect(run.locator("[data-output]")).to_contain_text("No migrations to apply.")

    # An action that asks first: the confirmation step, then it runs.
    page.goto(overview)
    actions.get_by_role("button", name="Run Drop everything").click()
    expect(page.get_by_role("heading", name="Run “Drop everything” on dev?")).to_be_visible()
    page.get_by_role("button", name="Run it").click()
    expect(run).to_have_attribute("data-state", "succeeded", timeout=30_000)
    expect(run.locator("[data-output]")).to_contain_text("dropped")

    # One at a time: while Sleep runs, the Overview links to it instead of offering a second run.
    page.goto(overview)
    actions.get_by_role("button", name="Run Sleep", exact=True).click()
    expect(run.locator("[data-output]")).to_contain_text("pid ", timeout=30_000)
    sleeping = page.url
    page.goto(overview)
    page.locator('#actions [data-action-running="Sleep"]').click()
    expect(page).to_have_url(sleeping)
    # Cancel stops it.
    run.get_by_role("button", name="Cancel").click()
    expect(run).to_have_attribute("data-state", "cancelled", timeout=30_000)
    expect(run.locator("[data-exit-status]")).to_have_text("143")
    expect(run).to_contain_text("Cancelled by dana")

    # A timeout stops it too (2 s in its spec).
    page.goto(overview)
    actions.get_by_role("button", name="Run Sleep briefly").click()
    expect(run).to_have_attribute("data-state", "timed_out", timeout=30_000)
    expect(run).to_contain_text("Timed out after 2 s")

    # The Activity tab lists every run.
    page.goto(f"{overview}activity/")
    expect(page.locator("#action-runs-log tbody tr")).to_have_count(5)

    # A viewer sees the actions, and no button.
    viewer = browser.new_page()
    sign_in(viewer, url, "vic")
    viewer.goto(overview)
    expect(viewer.locator("#actions")).to_contain_text("Say hello")
    expect(viewer.locator("#actions button")).to_have_count(0)
    expect(viewer.locator("#status-tree [data-node='services'] .tree-item")).not_to_have_count(0)
    expect(viewer.locator("#status-tree button[aria-label^='Run ']")).to_have_count(0)
    viewer.close()
    assert console_errors == []

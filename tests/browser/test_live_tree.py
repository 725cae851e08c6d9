"""Live updates keep the status tree as the user left it: the nodes they opened or closed, and where
the page was scrolled."""

from playwright.sync_api import expect

from deployments import services
from deployments.models import Deployment, Operation, Role
from tests.browser.conftest import wait_until
from tests.browser.test_journey import PASSWORD, sign_in


def test_a_live_update_keeps_open_nodes_open_closed_ones_closed_and_the_scroll(
    diploi_on_emulator, page, console_errors, make_member, make_project
):
    url = diploi_on_emulator.url
    owner = make_member(Role.ADMIN, username="ada")
    owner.set_password(PASSWORD)
    owner.save()
    deployment = services.deployment_create(
        project=make_project("django-postgres"), name="feature-x", stage="development", actor=owner
    )
    page.set_viewport_size({"width": 1000, "height": 500})
    sign_in(page, url, "ada")
    page.goto(f"{url}/deployments/{deployment.pk}/")
    header = page.locator("#deployment-header .deployment-health")
    expect(header).to_have_attribute("data-health", "green", timeout=45_000)

    storage = page.locator("details[data-node=storage]")
    expect(storage).not_to_have_attribute("open", "")  # green: closed as rendered
    storage.locator("summary").click()
    expect(storage).to_have_attribute("open", "")
    page.locator("details[data-node=storage]").evaluate("node => node.scrollIntoView()")
    page.mouse.wheel(0, 120)
    page.wait_for_timeout(200)
    scrolled = page.evaluate("window.scrollY")
    assert scrolled > 0

    page.evaluate(
        "window.__treeSwaps = 0; document.addEventListener('htmx:oobAfterSwap', (e) => {"
        " if (e.detail.target && e.detail.target.id === 'status-tree') window.__treeSwaps++; })"
    )

    # A restart: the watcher pushes new fragments (the header, the tree) while it rolls out.
    operation = services.deployment_restart(
        deployment=Deployment.objects.get(pk=deployment.pk), actor=owner, service_id="app"
    )
    wait_until(
        page,
        lambda: Operation.objects.get(pk=operation.pk).status == Operation.Status.SUCCEEDED,
        timeout_ms=45_000,
        what="the restart to take effect",
    )
    expect(header).to_have_attribute("data-health", "green", timeout=10_000)
    assert page.evaluate("window.__treeSwaps") >= 1  # the tree was replaced live

    expect(page.locator("details[data-node=storage]")).to_have_attribute("open", "")
    assert abs(page.evaluate("window.scrollY") - scrolled) <= 2
    assert console_errors == []

"""What the app says of itself shows live in the Services node, and the deployment's health follows it."""

from playwright.sync_api import expect

from deployments import services
from deployments.models import Role
from tests.browser.test_journey import PASSWORD, sign_in


def test_an_app_status_item_turning_yellow_turns_the_page_yellow_live(
    diploi_on_emulator, emulator, page, console_errors, make_member, make_project
):
    url = diploi_on_emulator.url
    viewer = make_member(Role.VIEWER, username="vic")
    viewer.set_password(PASSWORD)
    viewer.save()
    developer = make_member(Role.DEVELOPER)
    deployment = services.deployment_create(
        project=make_project("django-postgres"), name="feature-x", stage="development", actor=developer
    )
    sign_in(page, url, "vic")
    page.goto(f"{url}/deployments/{deployment.pk}/status/")
    header = page.locator("#deployment-header .deployment-health")
    item = page.locator('#status-tree li[data-key="app:app"]')
    expect(item).to_have_attribute("data-health", "green", timeout=45_000)
    expect(header).to_have_attribute("data-health", "green")
    expect(item).to_contain_text("Reported by Django's status URL")
    page.evaluate("window.__loadedAt = performance.timeOrigin")

    emulator.faults.app_status(deployment.namespace, "app", status="yellow", message="Cache warming up")
    expect(item).to_have_attribute("data-health", "yellow", timeout=20_000)
    expect(item).to_contain_text("app: Cache warming up")
    expect(header).to_have_attribute("data-health", "yellow")
    expect(page.locator("details[data-node=services]")).to_have_attribute("data-health", "yellow")

    emulator.faults.app_unreachable(deployment.namespace, "app")
    unknown = page.locator('#status-tree li[data-key="app status"]')
    expect(unknown).to_contain_text("Django status unknown: error trying to reach service", timeout=20_000)
    emulator.faults.heal_app_status(deployment.namespace)
    expect(item).to_have_attribute("data-health", "green", timeout=20_000)
    expect(header).to_have_attribute("data-health", "green")
    assert page.evaluate("window.__loadedAt") == page.evaluate("performance.timeOrigin"), "the page reloaded"
    assert console_errors == []

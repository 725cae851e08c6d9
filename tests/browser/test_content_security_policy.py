"""The dashboard works under its Content-Security-Policy: no inline script anywhere, and the
behaviours that were inline handlers (the team switcher, closing describe output) still work
(issue 15, item 13). A CSP violation is a console error, so the list must stay empty."""

import contextlib
import re

from playwright.sync_api import expect

from deployments.models import Membership, Role, Team
from tests.browser.test_journey import sign_in
from tests.support import built


def test_pages_work_under_the_policy_without_violations(
    diploi_on_emulator, page, console_errors, make_member, make_project, team, screenshot_on_failure
):
    from deployments import lifecycle, services

    url = diploi_on_emulator.url
    admin = make_member(Role.ADMIN, username="cai")
    other = Team.objects.create(name="Zeta team", slug="zeta-team")
    Membership.objects.create(team=other, user=admin, role=Role.ADMIN)
    deployment = built(
        services.deployment_create(project=make_project("static-nginx"), name="csp", stage="production", actor=admin)
    )
    with contextlib.suppress(lifecycle.LeaseBusy):
        lifecycle.reconcile_run(deployment.pk, owner="test")

    response = page.goto(f"{url}/accounts/login/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    sign_in(page, url, "cai")

    # The team switcher submits on change (was an inline onchange).
    page.select_option("#team-select", label="Zeta team")
    expect(page.get_by_role("heading", name=re.compile("Zeta team"))).to_be_visible()
    page.select_option("#team-select", label=team.name)
    expect(page.get_by_role("heading", name=re.compile(team.name))).to_be_visible()

    # Live updates still connect (connect-src), and the describe output closes (was an inline onclick).
    page.goto(f"{url}/deployments/{deployment.pk}/status/")
    services_node = page.locator("details[data-node=services]")
    expect(services_node).to_contain_text("All services ready", timeout=45_000)
    # Open as the Status tab shows every node, on the page and in the socket's fragments alike (a
    # summary click here closed it, or opened it, depending on whether the first push had arrived).
    expect(services_node).to_have_attribute("open", "")
    services_node.get_by_role("button", name="Describe web").click()
    expect(page.locator(".describe")).to_contain_text("Live objects of web")
    page.locator(".describe").get_by_role("button", name="Close").click()
    expect(page.locator(".describe")).to_have_count(0)

    for path in ("/projects/", f"/deployments/{deployment.pk}/", f"/deployments/{deployment.pk}/options/", "/admin/"):
        page.goto(url + path)
    assert console_errors == []

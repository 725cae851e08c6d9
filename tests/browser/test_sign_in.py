import re

from playwright.sync_api import expect

from deployments.models import Role
from tests.browser.conftest import wait_until


def test_it_signs_in_and_shows_the_live_dashboard(diploi, page, console_errors, make_member, screenshot_on_failure):
    make_member(Role.DEVELOPER, username="dana")

    page.goto(f"{diploi.url}/projects/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.get_by_label("Username").fill("dana")
    page.get_by_label("Password").fill("correct horse battery")
    frames = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append((ws.url, payload))))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="No projects yet")).to_be_visible()
    wait_until(page, lambda: frames, what="a websocket frame")
    assert frames and "/ws/teams/" in frames[0][0] and 'id="project-list"' in frames[0][1]
    assert console_errors == []


def test_it_fits_a_phone_screen(diploi, page, console_errors, make_member, screenshot_on_failure):
    make_member(Role.VIEWER, username="phil")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{diploi.url}/accounts/login/")
    page.get_by_label("Username").fill("phil")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="No projects yet")).to_be_visible()
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 390, f"page is {scroll_width}px wide on a 390px screen"
    assert console_errors == []

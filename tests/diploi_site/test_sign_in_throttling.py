"""Password guessing is throttled per account and per address on both sign-in pages, with a clear
message and an operator unlock in the admin (issue 15, item 11)."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.test import Client

PAGES = ["/accounts/login/", "/admin/login/"]


@pytest.fixture
def staff(make_user):
    return make_user("operator", password="the right one", is_staff=True)


def sign_in(page: str, username: str, password: str, *, address: str = "203.0.113.7"):
    return Client(REMOTE_ADDR=address).post(page, {"username": username, "password": password})


def signed_in(response) -> bool:
    return response.status_code == 302 and "_auth_user_id" in response.client.session


@pytest.mark.parametrize("login_page", PAGES)
def test_it_locks_an_account_after_five_wrong_passwords_even_from_new_addresses(staff, login_page, settings):
    settings.AXES_FAILURE_LIMIT = 5
    for attempt in range(4):
        assert sign_in(login_page, "operator", "wrong", address=f"198.51.100.{attempt}").status_code == 200
    assert sign_in(login_page, "operator", "wrong", address="198.51.100.4").status_code == 429  # the fifth

    response = sign_in(login_page, "operator", "the right one", address="198.51.100.99")

    assert response.status_code == 429
    assert not signed_in(response)
    page_text = " ".join(response.content.decode().split())
    assert "Too many failed sign-ins" in page_text and "as “operator”" in page_text
    assert "blocked for a while for 15 minutes" in page_text


@pytest.mark.parametrize("login_page", PAGES)
def test_it_locks_an_address_that_guesses_across_accounts(staff, make_user, login_page):
    for number in range(5):
        sign_in(login_page, f"nobody{number}", "wrong")

    assert sign_in(login_page, "operator", "the right one").status_code == 429
    assert signed_in(sign_in(login_page, "operator", "the right one", address="192.0.2.10"))


def test_a_success_before_the_limit_starts_the_count_again(staff):
    for _ in range(4):
        sign_in(PAGES[0], "operator", "wrong")
    assert signed_in(sign_in(PAGES[0], "operator", "the right one"))
    for _ in range(4):
        sign_in(PAGES[0], "operator", "wrong")
    assert signed_in(sign_in(PAGES[0], "operator", "the right one"))


def test_an_operator_unlocks_in_the_admin(staff, make_user, admin_client):
    for _ in range(5):
        sign_in(PAGES[0], "operator", "wrong")
    assert sign_in(PAGES[0], "operator", "the right one").status_code == 429
    attempts = AccessAttempt.objects.filter(username="operator")
    assert admin_client.get("/admin/axes/accessattempt/").status_code == 200

    response = admin_client.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": [a.pk for a in attempts], "post": "yes"},
    )

    assert response.status_code == 302
    assert not AccessAttempt.objects.filter(username="operator").exists()
    assert signed_in(sign_in(PAGES[0], "operator", "the right one"))


def test_behind_trusted_proxies_the_address_is_the_one_they_saw(staff, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    for _ in range(5):
        Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="spoofed, 203.0.113.50").post(
            PAGES[0], {"username": f"guess{_}", "password": "wrong"}
        )

    blocked = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.50")
    other = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.51")
    assert blocked.post(PAGES[0], {"username": "operator", "password": "the right one"}).status_code == 429
    assert other.post(PAGES[0], {"username": "operator", "password": "the right one"}).status_code == 302

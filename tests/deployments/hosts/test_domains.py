"""Custom domains: normalised, ASCII only, never the platform's, capped, unique in the database,
and optionally proven with a DNS TXT record (issue 15.2)."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connections

from deployments import services
from deployments.hosts.models import HostClaim
from deployments.hosts.names import HostError, normalize_host
from deployments.hosts.ownership import expected_value, record_name
from deployments.models import Deployment, Membership, Role, Team
from tests.deployments.hosts.dns_server import TxtServer


@pytest.fixture
def project(make_project):
    return make_project(slug="shop")


@pytest.fixture
def deployment(project, developer):
    return services.deployment_create(project=project, name="prod", stage="production", actor=developer)


@pytest.fixture
def rival(db, make_user, make_project):
    team = Team.objects.create(name="Other", slug="other-team")
    user = make_user()
    Membership.objects.create(team=team, user=user, role=Role.DEVELOPER)
    project = make_project(slug="rival", of=team)
    return services.deployment_create(project=project, name="prod", stage="production", actor=user), user


@pytest.mark.parametrize(
    "raw, host",
    [
        ("Shop.Example.COM", "shop.example.com"),
        ("shop.example.com.", "shop.example.com"),
        ("  www.example.org  ", "www.example.org"),
        ("bücher.example", "xn--bcher-kva.example"),
    ],
)
def test_it_normalizes_hosts(raw, host):
    assert normalize_host(raw) == host


@pytest.mark.parametrize(
    "raw", ["ſhop.example.com", "shop..example.com", ".example.com", "example", "a_b.example.com", "x.123", "-a.com"]
)
def test_it_refuses_hosts_that_are_not_plain_names(raw):
    with pytest.raises(HostError):
        normalize_host(raw)


def test_it_stores_the_normalized_form(deployment, developer):
    services.deployment_update(deployment=deployment, actor=developer, custom_domains=["Shop.Example.com."])

    assert Deployment.objects.get(pk=deployment.pk).custom_domains == ["shop.example.com"]
    assert HostClaim.objects.filter(deployment=deployment, kind="custom").get().host == "shop.example.com"


@pytest.mark.parametrize(
    "domain, message",
    [
        ("app-prod.rival.diploi.localhost.", "is under diploi.localhost, which Diploi assigns itself"),
        ("diploi.localhost.", "is under diploi.localhost"),
        ("ſhop.example.com", "is not a valid internationalised name"),
        ("localhost.localdomain", None),
    ],
)
def test_trailing_dots_and_lookalikes_do_not_bypass_the_checks(deployment, developer, domain, message):
    if message is None:
        services.deployment_update(deployment=deployment, actor=developer, custom_domains=[domain])
        return
    with pytest.raises(ValidationError, match=message):
        services.deployment_update(deployment=deployment, actor=developer, custom_domains=[domain])


def test_it_refuses_the_dashboards_own_host_as_a_custom_domain(deployment, developer, settings):
    settings.ALLOWED_HOSTS = ["diploi.example.com", ".example.net"]
    settings.RESERVED_HOSTS = ["status.example.org"]

    for domain in ("diploi.example.com", "DIPLOI.example.com.", "example.net", "status.example.org"):
        with pytest.raises(ValidationError, match="reserved for the platform itself"):
            services.deployment_update(deployment=deployment, actor=developer, custom_domains=[domain])


def test_it_refuses_a_domain_another_team_claimed_whatever_its_spelling(deployment, developer, rival):
    services.deployment_update(deployment=deployment, actor=developer, custom_domains=["shop.example.com"])
    theirs, user = rival

    with pytest.raises(ValidationError, match="already used by another deployment"):
        services.deployment_update(deployment=theirs, actor=user, custom_domains=["SHOP.example.com."])


def test_it_caps_domains_per_deployment(deployment, developer, settings):
    settings.CUSTOM_DOMAINS_PER_DEPLOYMENT = 3

    with pytest.raises(ValidationError, match="at most 3 custom domains"):
        services.deployment_update(
            deployment=deployment, actor=developer, custom_domains=[f"d{i}.example.com" for i in range(4)]
        )
    services.deployment_update(
        deployment=deployment, actor=developer, custom_domains=[f"d{i}.example.com" for i in range(3)]
    )


def test_it_caps_domains_per_team(project, deployment, developer, settings):
    settings.CUSTOM_DOMAINS_PER_TEAM = 3
    services.deployment_update(
        deployment=deployment, actor=developer, custom_domains=["a.example.com", "b.example.com"]
    )
    other = services.deployment_create(project=project, name="qa", stage="staging", actor=developer)

    with pytest.raises(ValidationError, match="Your team can have at most 3 custom domains in all"):
        services.deployment_update(deployment=other, actor=developer, custom_domains=["c.example.com", "d.example.com"])
    services.deployment_update(deployment=other, actor=developer, custom_domains=["c.example.com"])


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_of_one_domain_leave_exactly_one_owner(make_project, make_user, team):
    """Two teams race for one domain: the unique constraint lets exactly one win, every time."""
    deployments = []
    for index in range(2):
        owner_team = team if index == 0 else Team.objects.create(name="B", slug="race-b")
        user = make_user()
        Membership.objects.create(team=owner_team, user=user, role=Role.DEVELOPER)
        project = make_project(slug=f"race{index}", of=owner_team)
        deployments.append(
            (services.deployment_create(project=project, name="prod", stage="production", actor=user), user)
        )
    for attempt in range(5):
        domain = f"race{attempt}.example.com"
        barrier = threading.Barrier(2)
        outcomes = []

        def claim(deployment, user, domain=domain, barrier=barrier, outcomes=outcomes):
            try:
                barrier.wait()
                services.deployment_update(deployment=deployment, actor=user, custom_domains=[domain])
                outcomes.append("won")
            except ValidationError:
                outcomes.append("refused")
            finally:
                connections.close_all()

        threads = [threading.Thread(target=claim, args=pair) for pair in deployments]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["refused", "won"]
        assert HostClaim.objects.filter(host=domain).count() == 1
        holders = [d.pk for d, _ in deployments if domain in Deployment.objects.get(pk=d.pk).custom_domains]
        assert holders == [HostClaim.objects.get(host=domain).deployment_id]


# ----------------------------------------------------------------------------- DNS ownership


@pytest.fixture
def dns(settings):
    with TxtServer() as server:
        settings.CUSTOM_DOMAIN_TXT_VERIFICATION = True
        settings.DNS_NAMESERVERS = [server.address]
        settings.DNS_TIMEOUT_SECONDS = 2
        yield server


def test_with_the_dns_check_on_a_domain_needs_the_teams_txt_record(deployment, developer, dns):
    with pytest.raises(ValidationError) as refused:
        services.deployment_update(deployment=deployment, actor=developer, custom_domains=["shop.example.com"])
    wanted = expected_value(deployment.project.team_id)
    assert f"add a TXT record _diploi-challenge.shop.example.com with the value {wanted}" in str(refused.value)
    assert dns.questions == [record_name("shop.example.com")]

    dns.records[record_name("shop.example.com")] = ["unrelated", wanted]
    services.deployment_update(deployment=deployment, actor=developer, custom_domains=["shop.example.com"])
    assert Deployment.objects.get(pk=deployment.pk).custom_domains == ["shop.example.com"]


def test_another_teams_token_does_not_prove_ownership(deployment, developer, rival, dns):
    theirs, _ = rival
    dns.records[record_name("shop.example.com")] = [expected_value(theirs.project.team_id)]

    with pytest.raises(ValidationError, match="does not hold"):
        services.deployment_update(deployment=deployment, actor=developer, custom_domains=["shop.example.com"])


def test_an_unreachable_resolver_is_a_clear_temporary_refusal(deployment, developer, settings):
    with TxtServer() as server:
        address = server.address
    settings.CUSTOM_DOMAIN_TXT_VERIFICATION = True
    settings.DNS_NAMESERVERS = [address]  # nobody answers there any more
    settings.DNS_TIMEOUT_SECONDS = 1

    with pytest.raises(ValidationError, match="the DNS check could not be done"):
        services.deployment_update(deployment=deployment, actor=developer, custom_domains=["shop.example.com"])

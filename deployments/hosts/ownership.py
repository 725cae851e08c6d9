"""The optional DNS ownership check of custom domains (``CUSTOM_DOMAIN_TXT_VERIFICATION``).

With it on, a team proves it controls a domain before a deployment may serve
it: a TXT record ``_diploi-challenge.<domain>`` must hold the team's token
``diploi-verify=<token>``. The token is derived from ``SECRET_KEY`` and the
team, so it is stable, differs between teams, and cannot be guessed by another.
"""

from __future__ import annotations

import hashlib
import hmac

import dns.exception
import dns.resolver
from django.conf import settings

RECORD_PREFIX = "_diploi-challenge"
VALUE_PREFIX = "diploi-verify="


def record_name(domain: str) -> str:
    return f"{RECORD_PREFIX}.{domain}"


def team_token(team_id: int) -> str:
    digest = hmac.new(settings.SECRET_KEY.encode(), f"diploi-domain-owner:{team_id}".encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def expected_value(team_id: int) -> str:
    return VALUE_PREFIX + team_token(team_id)


def _resolver() -> dns.resolver.Resolver:
    nameservers = settings.DNS_NAMESERVERS
    resolver = dns.resolver.Resolver(configure=not nameservers)
    if nameservers:
        hosts, ports = [], set()
        for entry in nameservers:
            host, _, port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
            hosts.append(host or entry)
            ports.add(int(port) if port else 53)
        resolver.nameservers = hosts
        resolver.port = ports.pop() if len(ports) == 1 else 53
    resolver.lifetime = settings.DNS_TIMEOUT_SECONDS
    resolver.timeout = settings.DNS_TIMEOUT_SECONDS
    return resolver


def ownership_problem(domain: str, team_id: int) -> str | None:
    """Why ``domain`` is not (yet) proven to belong to the team, or None when it is or the check is off."""
    if not settings.CUSTOM_DOMAIN_TXT_VERIFICATION:
        return None
    name = record_name(domain)
    wanted = expected_value(team_id)
    try:
        answer = _resolver().resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return f"“{domain}”: add a TXT record {name} with the value {wanted} to prove the domain is yours."
    except (dns.exception.DNSException, OSError) as error:
        return f"“{domain}”: the DNS check could not be done ({error.__class__.__name__}); try again shortly."
    values = {b"".join(record.strings).decode("utf-8", "replace") for record in answer}
    if wanted not in values:
        return f"“{domain}”: the TXT record {name} does not hold {wanted} (found {', '.join(sorted(values))})."
    return None

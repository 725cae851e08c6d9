"""Who is signing in, as sign-in throttling (django-axes) counts them: the address and the user name."""

from __future__ import annotations

from django.conf import settings


def client_ip(request) -> str:
    """The peer address, or with ``TRUSTED_PROXY_COUNT`` proxies in front, the address the outermost
    of them saw (the right-most entries of X-Forwarded-For are theirs; anything left of it is the
    client's own claim and cannot be trusted)."""
    peer = request.META.get("REMOTE_ADDR", "")
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return peer
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    return hops[-proxies] if len(hops) >= proxies else peer


def client_username(request, credentials: dict | None) -> str:
    """The user name a sign-in tried, cut to what a user name can be (150): the attempt's row
    stores at most 255 characters, and a longer name is no account anyway."""
    username = (credentials or {}).get("username")
    if username is None:
        username = request.POST.get("username", "") if request is not None else ""
    return str(username)[:150]

"""The profile page: a user's SSH keys, and the gateway's host key to check against."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from deployments.forms import apply_service_errors
from deployments.ssh import selectors
from deployments.ssh.forms import SSHKeyForm
from deployments.ssh.services import ssh_key_add, ssh_key_remove


def _render(request, form: SSHKeyForm, *, status: int = 200):
    context = {"form": form, "keys": selectors.keys_of(request.user), **selectors.gateway_context()}
    return render(request, "ssh/profile.html", context, status=status)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def profile(request):
    """GET: the keys and the host key. POST: add a key (errors shown on the form, nothing lost)."""
    if request.method != "POST":
        return _render(request, SSHKeyForm())
    form = SSHKeyForm(request.POST)
    if form.is_valid():
        try:
            key = ssh_key_add(
                user=request.user,
                name=form.cleaned_data["name"],
                public_key=form.cleaned_data["public_key"],
                actor=request.user,
            )
        except ValidationError as error:
            apply_service_errors(form, error)
        else:
            messages.success(request, f"Key “{key.name}” added ({key.fingerprint}).")
            return redirect("profile")
    return _render(request, form, status=422)


@login_required
@require_POST
def key_remove(request):
    fingerprint = request.POST.get("fingerprint", "")
    try:
        ssh_key_remove(user=request.user, fingerprint=fingerprint, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Key {fingerprint} removed; sessions opened with it are being closed.")
    return redirect("profile")

"""Which commit a branch points at: `git ls-remote`, with a clear error when it cannot be asked.

On the cluster emulator (standalone mode, tests) a repository that cannot be
reached resolves to a simulated commit, labelled as such: the emulator builds
nothing real anyway.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from deployments.naming import redact_credentials


class CommitUnresolved(Exception):
    """The branch head could not be resolved (repository unreachable, branch missing)."""


@dataclass(frozen=True)
class Commit:
    sha: str
    message: str = ""
    simulated: bool = False


def resolve_branch_head(repository: str, branch: str) -> Commit:
    """The commit ``branch`` of ``repository`` points at now. Raises `CommitUnresolved` with a message
    a person can act on; on the emulator an unreachable repository gives a simulated commit."""
    try:
        return Commit(_ls_remote(repository, branch))
    except CommitUnresolved as error:
        if not settings.CLUSTER_SIMULATED:
            raise
        stamp = timezone.now().isoformat()
        sha = hashlib.sha1(f"simulated {repository} {branch} {stamp}".encode()).hexdigest()  # noqa: S324 - a name
        return Commit(sha, f"Simulated commit (the emulator builds nothing real): {error}", simulated=True)


def _ls_remote(repository: str, branch: str) -> str:
    if not repository:
        raise CommitUnresolved("the project has no repository: set one in the project's settings")
    ref = f"refs/heads/{branch}"
    # Never a prompt: no terminal, no askpass, and ssh in batch mode (a git@… repository fails at once
    # instead of asking about its host key).
    environment = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o ConnectTimeout=5",
        "LC_ALL": "C",
    }
    try:
        # Arguments, never a shell: "--" ends the options, so a repository cannot pass itself as one.
        result = subprocess.run(  # noqa: S603
            ["git", "ls-remote", "--", repository, ref],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=settings.BUILD_RESOLVE_TIMEOUT_SECONDS,
            env=environment,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise CommitUnresolved(
            f"{redact_credentials(repository)} did not answer within {settings.BUILD_RESOLVE_TIMEOUT_SECONDS} s"
        ) from None
    except OSError as error:
        raise CommitUnresolved(f"git could not run: {error}") from None
    if result.returncode != 0:
        why = (result.stderr.strip().splitlines() or ["git ls-remote failed"])[-1]
        raise CommitUnresolved(f"{redact_credentials(repository)} cannot be reached: {redact_credentials(why)}")
    for line in result.stdout.splitlines():
        sha, _, name = line.partition("\t")
        if name == ref:
            return sha.strip().lower()
    raise CommitUnresolved(f"{redact_credentials(repository)} has no branch “{branch}”")

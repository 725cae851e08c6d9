"""Which commit a branch points at: `git ls-remote`, with a clear error when it cannot be asked.

On the cluster emulator (standalone mode, tests) a repository that cannot be
reached resolves to a simulated commit, labelled as such: the emulator builds
nothing real anyway.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from deployments.cluster.git import GitCredentials
from deployments.naming import redact_credentials

SSH_OPTIONS = "-o BatchMode=yes -o ConnectTimeout=5"
# The head's message is for people: a server that cannot filter the commit's files out would send
# them all, so the fetch gets a few seconds in all and the build goes on without a message.
SUBJECT_SECONDS = 3


class CommitUnresolved(Exception):
    """The branch head could not be resolved (repository unreachable, branch missing)."""


@dataclass(frozen=True)
class Commit:
    sha: str
    message: str = ""
    simulated: bool = False


def resolve_branch_head(repository: str, branch: str, *, credentials: GitCredentials | None = None) -> Commit:
    """The commit ``branch`` of ``repository`` points at now (with the project's deploy key or HTTPS
    token, ``credentials``, when it has them). Raises `CommitUnresolved` with a message a person can act on;
    on the emulator an unreachable repository gives a simulated commit."""
    try:
        sha = _ls_remote(repository, branch, credentials)
    except CommitUnresolved as error:
        if not settings.CLUSTER_SIMULATED:
            raise
        stamp = timezone.now().isoformat()
        sha = hashlib.sha1(f"simulated {repository} {branch} {stamp}".encode()).hexdigest()  # noqa: S324 - a name
        return Commit(sha, f"Simulated commit (the emulator builds nothing real): {error}", simulated=True)
    return Commit(sha, _subject(repository, branch, sha, credentials))


def commit_subject(message: str) -> str:
    """A commit message's first line (what a build shows of it), at most 300 characters."""
    lines = message.strip().splitlines()
    return lines[0].strip()[:300] if lines else ""


def _subject(repository: str, branch: str, sha: str, credentials: GitCredentials | None) -> str:
    """The subject of ``sha``, the head of ``branch`` a moment ago, from a fetch of that one commit
    without its files (``--depth 1``, ``--filter=tree:0``: a few kilobytes); "" when it cannot be
    had in time (SUBJECT_SECONDS) or the branch moved meanwhile."""
    deadline = time.monotonic() + min(SUBJECT_SECONDS, settings.BUILD_RESOLVE_TIMEOUT_SECONDS)
    directory = Path(tempfile.mkdtemp(prefix="diploi-commit-"))
    try:
        with _ssh_environment(credentials) as environment:
            environment = {**environment, "GIT_DIR": str(directory)}
            steps = (
                ["git", "init", "--quiet", "--bare"],
                ["git", "fetch", "--quiet", "--depth=1", "--filter=tree:0", "--no-tags", "--", repository,
                 f"refs/heads/{branch}"],
                ["git", "log", "-1", "--format=%H%n%B", "FETCH_HEAD"],
            )  # fmt: skip
            for step in steps:
                # Arguments, never a shell; "--" ends the options.
                result = subprocess.run(  # noqa: S603
                    step,
                    capture_output=True,
                    text=True,
                    timeout=max(0.1, deadline - time.monotonic()),
                    env=environment,
                    stdin=subprocess.DEVNULL,
                )
                if result.returncode != 0:
                    return ""
    except (subprocess.TimeoutExpired, OSError):
        return ""
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    fetched, _, message = result.stdout.partition("\n")
    return commit_subject(message) if fetched.strip().lower() == sha else ""


@contextmanager
def _ssh_environment(credentials: GitCredentials | None):
    """Environment variables for git: never a prompt (no terminal, no askpass, ssh in batch mode: a
    git@… repository fails at once instead of asking about its host key); with credentials, ssh uses
    the deploy key and git's askpass the HTTPS token, from a private temporary directory (mode 0700,
    the files 0600), removed afterwards."""
    environment = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "GIT_SSH_COMMAND": f"ssh {SSH_OPTIONS}",
        "LC_ALL": "C",
    }
    if credentials is None:
        yield environment
        return
    directory = Path(tempfile.mkdtemp(prefix="diploi-git-"))
    try:
        if credentials.ssh_private_key:
            key, known_hosts = directory / "key", directory / "known_hosts"
            key.touch(mode=0o600)
            key.write_text(credentials.ssh_private_key)
            known_hosts.write_text("\n".join(credentials.known_hosts) + "\n")
            environment["GIT_SSH_COMMAND"] = (
                f"ssh -i {shlex.quote(str(key))} -o IdentitiesOnly=yes "
                f"-o UserKnownHostsFile={shlex.quote(str(known_hosts))} "
                f"-o StrictHostKeyChecking=accept-new {SSH_OPTIONS}"
            )
        if credentials.https_token:
            environment["GIT_ASKPASS"] = str(_askpass(directory, credentials))
        yield environment
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _askpass(directory: Path, credentials: GitCredentials) -> Path:
    """A GIT_ASKPASS program in ``directory`` answering git's user name and password prompts from
    files beside it (mode 0600): the token is in no argument and no environment variable."""
    username, token, program = directory / "username", directory / "token", directory / "askpass"
    for path, text in ((username, credentials.https_username), (token, credentials.https_token)):
        path.touch(mode=0o600)
        path.write_text(text)
    program.write_text(
        "#!/bin/sh\n"
        f'case "$1" in\n  Username*) cat {shlex.quote(str(username))} ;;\n  *) cat {shlex.quote(str(token))} ;;\nesac\n'
    )
    program.chmod(0o700)
    return program


def _ls_remote(repository: str, branch: str, credentials: GitCredentials | None = None) -> str:
    if not repository:
        raise CommitUnresolved("the project has no repository: set one in the project's settings")
    ref = f"refs/heads/{branch}"
    with _ssh_environment(credentials) as environment:
        return _ask(repository, ref, branch, environment)


def _ask(repository: str, ref: str, branch: str, environment: dict) -> str:
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

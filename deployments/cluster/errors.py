"""What can go wrong talking to a cluster, and whether trying again can help.

Callers (Celery tasks, the watcher, the UI) decide on `retryable`: a temporary
error is retried with backoff; a permanent one is shown to a person.
"""


class ClusterError(Exception):
    """A cluster request failed. ``retryable`` says whether the same request may succeed later."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str = "",
        retry_after: float | None = None,
        causes: tuple[dict, ...] = (),
    ):
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason
        # The server's field errors (Status details.causes: reason, message, field), for a 422.
        self.causes = causes
        # Seconds the server asked us to wait before trying again (429/503 Retry-After), if it said.
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message


class ClusterNotConfigured(ClusterError):
    """No cluster is configured (no KUBE_API_URL, kubeconfig or in-cluster environment)."""


class ClusterUnavailable(ClusterError):
    """The API server cannot be reached, timed out, or answered 5xx/429."""

    retryable = True


class ClusterUnauthorized(ClusterError):
    """401/403: our credentials are wrong or lack a permission. Needs an operator."""


class NotFound(ClusterError):
    """404: the object (or its namespace) does not exist."""


class Conflict(ClusterError):
    """409: someone else changed it, or it already exists. Re-reading and retrying helps."""

    retryable = True


class Invalid(ClusterError):
    """422/400: the API server rejected what we sent. Its message says why."""


class NamespaceTerminating(ClusterError):
    """403 because the namespace is being deleted: it will be gone (or free) shortly."""

    retryable = True


class WatchExpired(ClusterError):
    """410 Gone: the watch's resourceVersion is too old. List again, then watch from there."""

    retryable = True

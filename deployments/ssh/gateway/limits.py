"""Counting failed logins: per source address and per user name, over a sliding window. In memory, per process."""

from __future__ import annotations

import time
from collections import OrderedDict, deque


class FailureLimiter:
    """At most ``limit`` failures per key in ``window`` seconds; then the key waits until the oldest expires."""

    def __init__(self, limit: int, window: float = 60.0, *, max_keys: int = 50_000):
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, key: str) -> float:
        """Seconds until ``key`` may try again; 0 when it may now."""
        times = self._recent(key)
        if times is None or len(times) < self.limit:
            return 0.0
        return max(times[0] + self.window - time.monotonic(), 0.1)

    def failed(self, key: str) -> None:
        times = self._recent(key)
        if times is None:
            times = self._failures[key] = deque()
            while len(self._failures) > self.max_keys:  # a flood of distinct keys cannot grow memory without bound
                self._failures.popitem(last=False)
        times.append(time.monotonic())
        self._failures.move_to_end(key)

    def _recent(self, key: str) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        horizon = time.monotonic() - self.window
        while times and times[0] < horizon:
            times.popleft()
        return times

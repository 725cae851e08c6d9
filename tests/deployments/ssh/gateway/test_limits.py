import time

from deployments.ssh.gateway.limits import FailureLimiter


def test_it_lets_a_key_try_until_the_limit_then_until_the_oldest_failure_expires():
    limiter = FailureLimiter(limit=3, window=0.5)
    for _ in range(2):
        limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == 0
    limiter.failed("10.0.0.1")
    assert 0 < limiter.retry_after("10.0.0.1") <= 0.5
    assert limiter.retry_after("10.0.0.2") == 0
    time.sleep(0.6)
    assert limiter.retry_after("10.0.0.1") == 0


def test_a_flood_of_distinct_keys_keeps_only_the_newest():
    limiter = FailureLimiter(limit=1, window=60, max_keys=100)
    for n in range(1000):
        limiter.failed(f"user{n}")
    assert len(limiter._failures) == 100
    assert limiter.retry_after("user999") > 0
    assert limiter.retry_after("user0") == 0

"""Named leases (`Lease`): what one process at a time does (the watchers' status writer, CPU sampler...)."""

from datetime import timedelta

from django.utils import timezone

from deployments.models import Lease


def test_a_lease_is_one_holders_until_it_expires_or_is_given_back(db):
    assert Lease.acquire("statuses", "watcher-a", 30)  # the first ask makes it
    assert not Lease.acquire("statuses", "watcher-b", 30)
    assert Lease.acquire("statuses", "watcher-a", 30)  # renewed
    Lease.objects.filter(name="statuses").update(expires_at=timezone.now() - timedelta(seconds=1))
    assert Lease.acquire("statuses", "watcher-b", 30)  # expired: taken over
    assert not Lease.acquire("statuses", "watcher-a", 30)
    assert Lease.release("statuses", "watcher-b")
    assert Lease.acquire("statuses", "watcher-a", 30)  # given back: taken at once
    assert Lease.objects.filter(name="statuses").count() == 1


def test_renewing_a_lease_is_one_statement(db, django_assert_num_queries):
    assert Lease.acquire("statuses", "watcher-a", 5)
    with django_assert_num_queries(1):  # the watchers renew theirs every second
        assert Lease.acquire("statuses", "watcher-a", 5)

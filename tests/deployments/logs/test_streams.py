"""`LogStream` against the emulator over HTTP: lines arrive, resume without duplicates, bounded."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async

from deployments.logs.streams import LogStream, Position, Source, stamp_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_thread_connections")]


async def collect(stream: LogStream, until, timeout: float = 10) -> tuple[list, int, list]:
    """Read batches until ``until(lines)`` holds; return (lines, skipped, ended)."""
    lines, skipped, ended = [], 0, []
    deadline = time.monotonic() + timeout
    while not until(lines):
        left = deadline - time.monotonic()
        assert left > 0, f"waited for lines; have {[line.text for line in lines][-5:]}, ended {ended}"
        batch = await asyncio.wait_for(stream.read(), left)
        if batch is None:
            break
        lines += batch.lines
        skipped += batch.skipped
        ended += batch.ended
    return lines, skipped, ended


def test_it_normalises_timestamps_so_they_compare():
    assert stamp_key("2026-12-02T15:00:00.1234Z") > stamp_key("2026-12-02T15:00:00.12339Z")
    assert stamp_key("2026-12-02T15:00:01Z") == "2026-12-02T15:00:01.000000000Z"
    assert stamp_key("yesterday") is None
    with pytest.raises(ValueError, match="RFC 3339"):
        Position.parse("2026-12-02 15:00")


async def test_it_follows_what_a_container_prints(running, emulator):
    found = await sync_to_async(running)()
    pod = (await sync_to_async(found.running_pods)())[0]
    namespace = found.deployment.namespace
    stream = LogStream(namespace=namespace, sources=[Source(pod, found.component)]).start()
    try:
        lines, _, _ = await collect(stream, lambda lines: any("listening" in line.text for line in lines))
        assert all(line.pod == pod and stamp_key(line.stamp) for line in lines)
        emulator.logs.write(namespace, pod, found.component, 0, "GET / HTTP/1.1 200\nGET /admin/ HTTP/1.1 302")
        more, _, _ = await collect(stream, lambda lines: len(lines) >= 2)
        assert [line.text for line in more] == ["GET / HTTP/1.1 200", "GET /admin/ HTTP/1.1 302"]
    finally:
        await stream.close()
    assert await asyncio.wait_for(stream.read(), 5) is None  # closed: the stream ends


async def test_it_resumes_from_a_position_without_repeating_or_losing_lines(running, emulator):
    found = await sync_to_async(running)()
    pod = (await sync_to_async(found.running_pods)())[0]
    namespace, container = found.deployment.namespace, found.component
    # Three lines written at once share one timestamp: the position must count them.
    emulator.logs.write(namespace, pod, container, 0, "one\ntwo\nthree")
    first = LogStream(namespace=namespace, sources=[Source(pod, container)]).start()
    lines, _, _ = await collect(first, lambda lines: any(line.text == "two" for line in lines))
    await first.close()
    upto = next(i for i, line in enumerate(lines) if line.text == "two")
    seen = lines[: upto + 1]
    position = Position(seen[-1].stamp, sum(1 for line in seen if line.stamp == seen[-1].stamp))
    emulator.logs.write(namespace, pod, container, 0, "four")
    second = LogStream(namespace=namespace, sources=[Source(pod, container)], resume={pod: position}).start()
    try:
        rest, _, _ = await collect(second, lambda lines: any(line.text == "four" for line in lines))
    finally:
        await second.close()
    assert [line.text for line in rest] == ["three", "four"]


async def test_a_chatty_container_is_bounded_and_the_skip_is_counted(running, emulator):
    found = await sync_to_async(running)()
    pod = (await sync_to_async(found.running_pods)())[0]
    namespace, container = found.deployment.namespace, found.component
    stream = LogStream(namespace=namespace, sources=[Source(pod, container)], tail=0, window=100).start()
    try:
        await asyncio.sleep(0.3)  # the follow is open
        # 4,000 lines (the emulator keeps 5,000 per container: all of them reach the stream).
        for chunk in range(10):
            text = "\n".join(f"line {chunk * 400 + n}" for n in range(400))
            emulator.logs.write(namespace, pod, container, 0, text)
        await asyncio.sleep(1.0)  # nobody reads meanwhile: the stream must not hold them all
        lines, skipped, _ = await collect(stream, lambda lines: any(line.text == "line 3999" for line in lines))
    finally:
        await stream.close()
    assert len(lines) + skipped == 4000  # every line either delivered or counted
    assert len(lines) <= 100 + 400  # the window, plus what may arrive while reading
    assert lines[-1].text == "line 3999"


async def test_previous_container_after_a_crash(running, emulator):
    found = await sync_to_async(running)()
    pod = (await sync_to_async(found.running_pods)())[0]
    namespace, container = found.deployment.namespace, found.component
    emulator.faults.crash(namespace, {"diploi.io/service": container}, exit_code=1)
    from tests.support import wait_for

    await sync_to_async(wait_for)(lambda: found.restarts(pod) >= 1, timeout=30, what="a restart")
    stream = LogStream(namespace=namespace, sources=[Source(pod, container)], previous=True).start()
    lines, _, ended = await collect(stream, lambda lines: False)
    assert any("started" in line.text for line in lines)
    assert ended == [(pod, "end of the log")]


async def test_a_missing_pod_ends_with_the_servers_reason(running):
    found = await sync_to_async(running)()
    stream = LogStream(namespace=found.deployment.namespace, sources=[Source("nope-0", found.component)]).start()
    lines, _, ended = await collect(stream, lambda lines: False)
    assert lines == [] and ended[0][0] == "nope-0" and "not found" in ended[0][1]

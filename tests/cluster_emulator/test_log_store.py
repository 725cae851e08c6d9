"""The emulator's log store on its own, with a clock the test moves: periodic lines made on demand."""

from __future__ import annotations

from cluster_emulator.logs import LINES_PER_CONTAINER, PodLogs

KEY = ("ns", "web-0", "web", 0)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def texts(logs: PodLogs, **options) -> list[str]:
    return b"".join(logs.read(KEY, **options)).decode().splitlines()


def test_periodic_lines_appear_as_their_moments_come_in_order_with_what_is_written():
    clock = Clock()
    logs = PodLogs(clock=clock)
    logs.write(*KEY, "started")
    logs.chatter(*KEY, interval=2.0, line=lambda n, wall: f"tick {n}" if n != 1 else None)
    clock.now += 3.0
    assert texts(logs) == ["started", "tick 0"]
    clock.now += 0.5
    logs.write(*KEY, "written")  # at 3.5 s: after tick 0, before tick 1 (which prints nothing) and tick 2
    clock.now += 3.0
    assert texts(logs) == ["started", "tick 0", "written", "tick 2"]
    stamps = [line.split(" ", 1)[0] for line in texts(logs, timestamps=True)]
    assert stamps == sorted(stamps)


def test_a_long_unread_stretch_makes_at_most_a_store_of_lines_and_the_end_stops_them():
    clock = Clock()
    logs = PodLogs(clock=clock)
    logs.chatter(*KEY, interval=1.0, line=lambda n, wall: f"tick {n}")
    clock.now += 10 * LINES_PER_CONTAINER
    lines = texts(logs)
    assert len(lines) == LINES_PER_CONTAINER and lines[-1] == f"tick {10 * LINES_PER_CONTAINER - 1}"
    logs.end(*KEY)
    clock.now += 100
    assert texts(logs)[-1] == f"tick {10 * LINES_PER_CONTAINER - 1}"

"""The one place that opens container log streams from the cluster (`pods/{name}/log`), bounded.

`LogStream` follows the logs of one or more containers (one per replica, interleaved as they
arrive, each line naming its pod) with ``timestamps=true``. Each source is read by a thread
through the shared `Cluster` client (its TLS, token and client-certificate settings work for
the emulator and a real API server alike); the asyncio side only awaits `read()`.

Bounded: at most `window` lines wait for the reader. When the reader (a websocket) is slower
than the containers print, the oldest waiting lines are dropped and counted: the next batch
says how many were skipped, so the page shows "… N lines skipped" instead of the web process
buffering without limit.

Resuming: a `Position` is the last timestamp a reader saw and how many lines carried exactly
that timestamp (lines printed at once share one). The stream asks the API server for
``sinceTime`` = that timestamp and drops what the reader already has, so a reconnect neither
repeats lines nor leaves a gap the cluster still holds.

Catching up: each container's log is first read without ``follow`` (the last `tail` lines, or
from the resume position): the end of that response is the cluster saying it has no more, and
the batch that carries its last line names the pod in ``caught_up``. Only then is the log
followed, from the last line read (so nothing printed in between is lost or repeated).

Shared follows: every live reader of one container in this process shares one follow of it
(`_Upstream`): a hundred viewers of a chatty container cost the API server one stream, and the
web process parses each line once. A reader joins after its own backlog read: the upstream keeps
its last `window` lines, so the joiner gets what came after its position from them, then every
new line; a joiner whose position is older than what the upstream still holds follows on its
own instead. The last reader to leave ends the follow.

Command sources (a template's log source naming a command, or a file read with ``tail -F``) run
through exec (`deployments.cluster.streams`) in an asyncio task instead of a thread, shared the same
way (`_CommandFollow`): one run of the command per pod, container and command for every reader on
this event loop, keeping its last `window` lines; the last reader to leave stops it. Their lines
carry no timestamp from the cluster, so each is stamped when it arrives; a run counts as caught up
once the command has been quiet for `CATCH_UP_QUIET` seconds. A reader joining a run gets the last
`tail` lines it holds, or (reconnecting) what came after the line its position names. When the run
does not hold that line (the reader came from an earlier run), it gets what the run printed after
the last line with the text the reader had last (its text travels in the position), once the run's
backlog is out, so a ``tail -F`` run anew does not show its tail twice.

`close()` ends every source now (their HTTP responses and exec streams are shut) and is
idempotent; a consumer calls it when its socket closes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from deployments.cluster import errors
from deployments.cluster.connection import get_cluster
from deployments.cluster.streams import exec_open

logger = logging.getLogger(__name__)

WINDOW = 2000  # lines waiting for the reader, per stream
RETRY_SECONDS = 1.0  # a cut follow resumes after this
CATCH_UP_QUIET = 0.3  # a command source quiet this long after it starts has printed its backlog
MAX_LINE = 16 * 1024  # a command's line longer than this is cut into pieces
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$")


def stamp_key(stamp: str) -> str | None:
    """An RFC 3339 UTC timestamp as the kubelet writes it (nanoseconds, trailing zeros trimmed)
    normalised to nine fraction digits, so that keys compare as strings; None if it is not one."""
    match = _STAMP.match(stamp)
    if match is None:
        return None
    return f"{match.group(1)}.{(match.group(2) or '').ljust(9, '0')}Z"


def now_stamp() -> str:
    """Now as the kubelet stamps a line (RFC 3339 UTC, nanoseconds): for lines a command prints."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


@dataclass(frozen=True)
class Source:
    """One container's log (``command`` empty), or what ``command`` prints when run in it by exec."""

    pod: str
    container: str
    command: tuple[str, ...] = ()


@dataclass(frozen=True)
class Position:
    """Where a reader is in one pod's log: the last timestamp seen, how many lines had it, and (for a
    command source, whose re-run prints anew) the text of the last line."""

    stamp: str
    seen: int = 1
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> Position:
        """From ``<stamp>``, ``<stamp>~<seen>`` or ``<stamp>~<seen>~<last line>``; ValueError for
        anything else."""
        stamp, _, rest = text.partition("~")
        seen, _, last = rest.partition("~")
        if stamp_key(stamp) is None:
            raise ValueError(f"not an RFC 3339 UTC timestamp: {stamp!r}")
        count = int(seen) if seen else 1
        if count < 0:
            raise ValueError("the count of lines seen cannot be negative")
        return cls(stamp, count, last)


@dataclass(frozen=True)
class LogLine:
    pod: str
    stamp: str
    text: str

    def wire(self) -> str:
        """``[pod, stamp, text]`` as JSON, encoded once however many viewers a shared follow relays it to."""
        encoded = self.__dict__.get("_wire")
        if encoded is None:
            encoded = json.dumps([self.pod, self.stamp, self.text])
            object.__setattr__(self, "_wire", encoded)
        return encoded


@dataclass
class Batch:
    """What arrived since the last read: ``skipped`` lines were dropped before ``lines``;
    ``caught_up`` names the pods whose backlog ends with these lines (the cluster has no more for
    now); ``ended`` names sources that stopped, with why."""

    lines: list[LogLine] = field(default_factory=list)
    skipped: int = 0
    ended: list[tuple[str, str]] = field(default_factory=list)
    caught_up: list[str] = field(default_factory=list)


class _Dedupe:
    """Drops what a reader at `Position` already saw; then tracks the position itself. Each request
    from the position (the first, and every resume after a cut) calls `rearm()` first."""

    def __init__(self, position: Position | None):
        self.key = stamp_key(position.stamp) if position else None
        self.stamp = position.stamp if position else None
        self.same = position.seen if position else 0  # lines read at `key`
        self._drop = 0  # lines at `key` the current request still repeats
        self._dropping = False

    def rearm(self) -> None:
        """A new request from `position()`: it repeats what came before and the lines at its stamp."""
        if self.key is not None:
            self._dropping, self._drop = True, self.same

    @property
    def settled(self) -> bool:
        """Nothing more to drop: every line from here on is new to the reader."""
        return not self._dropping

    def admit(self, stamp: str, key: str | None = None) -> bool:
        key = key or stamp_key(stamp)
        if key is None:
            return True  # not a timestamped line (should not happen with timestamps=true)
        if self._dropping:
            if key < self.key:
                return False
            if key == self.key and self._drop > 0:
                self._drop -= 1
                return False
            self._dropping = False
        if key == self.key:
            self.same += 1
        else:
            self.key, self.stamp, self.same = key, stamp, 1
        return True

    def position(self) -> Position | None:
        return Position(self.stamp, self.same) if self.stamp else None


class LogStream:
    """Follows the logs of `sources` in `namespace` (see the module docstring). Not restartable:
    open a new one to read again."""

    def __init__(
        self,
        *,
        namespace: str,
        sources: list[Source],
        previous: bool = False,
        follow: bool = True,
        resume: dict[str, Position] | None = None,
        tail: int | None = 500,
        window: int = WINDOW,
    ):
        if not sources:
            raise ValueError("a log stream needs at least one container")
        self.namespace = namespace
        self.sources = list(sources)
        self.previous = previous
        self.follow = follow and not previous  # a previous container has ended: nothing to follow
        self.resume = dict(resume or {})
        self.tail = tail
        self.window = window
        self._lock = threading.Lock()
        self._lines: deque[LogLine] = deque()
        self._skipped = 0
        self._ended: list[tuple[str, str]] = []
        self._caught_up: list[str] = []
        self._running = 0
        self._stop = threading.Event()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._signalled = False
        self._threads: list[threading.Thread] = []

    # -- the asyncio side ---------------------------------------------------------------------------

    def start(self) -> LogStream:
        """Open every source (a thread per container log; a command joins its shared run). Call from
        the event loop that reads."""
        self._loop = asyncio.get_running_loop()
        self._running = len(self.sources)
        for source in self.sources:
            if source.command:
                _HUB.join_command(self, source)
                continue
            thread = threading.Thread(
                target=self._follow, args=(source,), name=f"logs-open {self.namespace}/{source.pod}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        return self

    async def read(self) -> Batch | None:
        """The next batch (waits for one); None once every source has ended and all was read."""
        while True:
            with self._lock:
                if self._lines or self._skipped or self._ended or self._caught_up:
                    batch = Batch(list(self._lines), self._skipped, self._ended, self._caught_up)
                    self._lines.clear()
                    self._skipped, self._ended, self._caught_up = 0, [], []
                    self._signalled = False
                    self._wake.clear()
                    return batch
                if self._running == 0 or self._stop.is_set():
                    return None
                self._signalled = False
                self._wake.clear()
            await self._wake.wait()

    async def close(self) -> None:
        """End every source now (idempotent). Threads finish on their own a moment later."""
        if self._stop.is_set():
            return
        self._stop.set()
        _HUB.leave(self)
        try:
            get_cluster().interrupt_watches(self._stop)
        except errors.ClusterError:
            pass
        self._wake.set()

    # -- the reading threads ------------------------------------------------------------------------

    def _follow(self, source: Source) -> None:
        """A container's log: the backlog, then the shared follow (or, when that cannot serve this
        reader's position, a follow of its own)."""
        dedupe = _Dedupe(self.resume.get(source.pod))
        reason = "the container stopped" if self.follow else "end of the log"
        # No backlog wanted (tail 0, nothing to resume): there is nothing to catch up on.
        caught_up = self.follow and self.tail == 0 and dedupe.position() is None
        if caught_up:
            self._mark_caught_up(source.pod)
        tail = self.tail
        try:
            while not self._stop.is_set():
                position = dedupe.position()
                if caught_up and self.follow:
                    if _HUB.join(self, source, dedupe, from_start=tail is None):
                        return  # the upstream relays from here, and says when it ends
                    threading.current_thread().name = f"logs {self.namespace}/{source.pod}"  # following alone
                dedupe.rearm()
                try:
                    # The backlog first, without follow: its end is the cluster saying it has no more.
                    # With no position after it, the log was empty: following all of it loses nothing.
                    lines = get_cluster().pod_log(
                        source.pod,
                        self.namespace,
                        container=source.container,
                        follow=self.follow and caught_up,
                        previous=self.previous,
                        since_time=position.stamp if position else None,
                        tail_lines=tail if position is None else None,
                        stop=self._stop,
                    )
                    for raw in lines:
                        stamp, _, text = raw.partition(" ")
                        if dedupe.admit(stamp):
                            self._push(LogLine(source.pod, stamp, text))
                    if not caught_up:
                        caught_up, tail = True, None
                        self._mark_caught_up(source.pod)
                        if self.follow:
                            continue
                    break
                except errors.ClusterUnavailable as error:
                    if not self.follow:
                        reason = f"the log was cut: {error}"
                        break
                    logger.info("log stream of %s/%s cut, resuming: %s", self.namespace, source.pod, error)
                    if self._stop.wait(RETRY_SECONDS):
                        break
                except errors.ClusterError as error:  # no such pod, container not started, no previous run
                    reason = str(error)
                    break
        except Exception:  # noqa: BLE001 - a reading thread must always say it ended
            logger.exception("log stream of %s/%s failed", self.namespace, source.pod)
            reason = "reading the log failed (see the server log)"
        self._source_ended(source, reason)

    # -- shared -------------------------------------------------------------------------------------

    def _source_ended(self, source: Source, reason: str) -> None:
        with self._lock:
            self._running -= 1
            if not self._stop.is_set():
                self._ended.append((source.pod, reason))
        self._signal()

    def _mark_caught_up(self, pod: str) -> None:
        with self._lock:
            self._caught_up.append(pod)
        self._signal()

    def _push(self, line: LogLine) -> None:
        with self._lock:
            if len(self._lines) >= self.window:
                self._lines.popleft()  # the reader is behind: drop the oldest, and say so
                self._skipped += 1
            self._lines.append(line)
        self._signal()

    def _signal(self) -> None:
        # One wake-up per batch, not per line: a chatty container must not flood the event loop.
        with self._lock:
            if self._signalled or self._loop is None:
                return
            self._signalled = True
        try:
            self._loop.call_soon_threadsafe(self._wake.set)
        except RuntimeError:  # the loop closed under us: nobody reads any more
            self._stop.set()


@dataclass
class Output:
    """What one bounded run of a command printed (`command_output`), and why it stopped."""

    source: Source
    lines: list[str]
    stopped: str
    failed: bool = False  # it never ran: `stopped` says why


async def command_output(*, namespace: str, source: Source, max_lines: int, seconds: float) -> Output:
    """Run ``source.command`` once in its container (its own exec, not a shared run) and keep what it
    prints, stdout and stderr together, until it exits, has printed ``max_lines`` lines or has run for
    ``seconds``, whichever comes first. For a download. Not idempotent: each call runs the command."""
    lines, splitter, stream = [], _Lines(), None
    stopped, failed = f"stopped after {seconds:g} s", False
    try:
        async with asyncio.timeout(seconds):
            stream = await exec_open(
                namespace=namespace,
                pod=source.pod,
                container=source.container,
                command=list(source.command),
                tty=False,
                stdin=False,
            )
            while len(lines) < max_lines:
                item = await stream.read()
                if item is None:
                    lines += splitter.rest()
                    if stream.failure:
                        stopped, failed = stream.failure, not lines
                    else:
                        stopped = f"the command exited with status {stream.exit_status}"
                    break
                lines += splitter.feed(item[1])
            else:
                stopped = f"stopped at {max_lines} lines"
    except TimeoutError:
        lines += splitter.rest()
    except errors.ClusterError as error:
        stopped, failed = str(error), True
    finally:
        if stream is not None:
            await stream.close()
    return Output(source, lines[:max_lines], stopped, failed)


def _after(lines: list[LogLine], last: str) -> list[LogLine] | None:
    """What a command printed after the last of ``lines`` whose text is ``last`` (None if none is)."""
    for index in range(len(lines) - 1, -1, -1):
        if lines[index].text == last:
            return lines[index + 1 :]
    return None


class _Lines:
    """A command's output (bytes, in pieces as they come) cut into lines of at most MAX_LINE."""

    def __init__(self):
        self.pending = b""

    def feed(self, data: bytes) -> list[str]:
        self.pending += data
        *complete, self.pending = self.pending.split(b"\n")
        while len(self.pending) > MAX_LINE:
            complete.append(self.pending[:MAX_LINE])
            self.pending = self.pending[MAX_LINE:]
        return [raw.decode(errors="replace").removesuffix("\r") for raw in complete]

    def rest(self) -> list[str]:
        rest, self.pending = self.pending, b""
        return [rest.decode(errors="replace")] if rest else []


class _Subscriber:
    """One reader of a shared follow. ``held`` (a command's reader coming from an earlier run) keeps
    what the run prints until its backlog is out, to find the reader's last line in it."""

    __slots__ = ("stream", "source", "dedupe", "held", "last")

    def __init__(self, stream: LogStream, source: Source, dedupe: _Dedupe | None):
        self.stream, self.source, self.dedupe = stream, source, dedupe
        self.held: list[LogLine] | None = None
        self.last = ""

    def take(self, line: LogLine, key: str | None) -> None:
        if self.held is not None:
            self.held.append(line)
            if len(self.held) > self.stream.window:  # more than a backlog: the reader's line is not coming
                self.release()
            return
        if self.dedupe is not None:
            if not self.dedupe.admit(line.stamp, key):
                return
            if self.dedupe.settled:
                self.dedupe = None  # from here on every line is new to this reader: no more checks
        self.stream._push(line)

    def release(self) -> None:
        """The run's backlog is out: relay what came after the reader's last line (all when not found)."""
        held, self.held = self.held, None
        after = _after(held, self.last)
        for line in held if after is None else after:
            self.stream._push(line)


class _Upstream:
    """One shared follow of one source, relayed to every subscribed `LogStream` (see the module
    docstring): its last WINDOW lines, its readers, and its end."""

    def __init__(self, hub: _Hub, key: tuple, namespace: str, source: Source):
        self.hub, self.key, self.namespace, self.source = hub, key, namespace, source
        self.recent: deque[tuple[LogLine, str | None]] = deque(maxlen=WINDOW)
        self.subscribers: list[_Subscriber] = []
        self.stop = threading.Event()
        self.ended = False

    def halt(self) -> None:
        """Nobody reads any more (``stop`` is set): end the follow now."""
        raise NotImplementedError

    def _finish(self, reason: str) -> None:
        with self.hub.lock:
            self.ended = True
            if self.hub.upstreams.get(self.key) is self:
                del self.hub.upstreams[self.key]
            subscribers, self.subscribers = self.subscribers, []
        if not self.stop.is_set():
            for subscriber in subscribers:
                if subscriber.held is not None:
                    subscriber.release()
                subscriber.stream._source_ended(subscriber.source, reason)


class _LogFollow(_Upstream):
    """One follow of one container's log. Its thread resumes by itself after a cut, from the last line
    it read."""

    def __init__(self, hub: _Hub, key: tuple, namespace: str, source: Source, dedupe: _Dedupe, from_start: bool):
        super().__init__(hub, key, namespace, source)
        # `recent` holds every line after `origin` (the creator's position, or the last line it dropped);
        # from_start: the whole log, as the creator's was empty; no backlog: only lines printed from now.
        self.origin = dedupe.key or ""
        self.start_seen = dedupe.same
        self.dropped = False
        self.from_start = from_start
        self.no_backlog = not from_start and dedupe.key is None
        self.position = _Dedupe(dedupe.position())

    def halt(self) -> None:
        threading.Thread(target=_interrupt, args=(self.stop,), daemon=True).start()

    def covers(self, dedupe: _Dedupe) -> bool:
        """Whether a reader at ``dedupe``'s position can be served without a gap."""
        if dedupe.key is None:
            return self.from_start and not self.dropped
        if self.origin == dedupe.key:  # at the very line it starts from: only if it read no fewer there
            return not self.dropped and dedupe.same >= self.start_seen
        return self.origin < dedupe.key and not self.no_backlog

    def add(self, subscriber: _Subscriber) -> None:
        """Called with the hub's lock held: replay what the reader lacks, then relay."""
        subscriber.dedupe.rearm()
        for line, key in self.recent:
            subscriber.take(line, key)
        self.subscribers.append(subscriber)

    def run(self) -> None:
        reason = "the container stopped"
        try:
            while not self.stop.is_set():
                position = self.position.position()
                self.position.rearm()
                try:
                    lines = get_cluster().pod_log(
                        self.source.pod,
                        self.namespace,
                        container=self.source.container,
                        follow=True,
                        since_time=position.stamp if position else None,
                        tail_lines=0 if self.no_backlog and position is None else None,
                        stop=self.stop,
                    )
                    for raw in lines:
                        stamp, _, text = raw.partition(" ")
                        key = stamp_key(stamp)
                        if not self.position.admit(stamp, key):
                            continue
                        line = LogLine(self.source.pod, stamp, text)
                        with self.hub.lock:
                            if len(self.recent) == self.recent.maxlen:
                                self.origin, self.dropped = self.recent[0][1] or self.origin, True
                            self.recent.append((line, key))
                            for subscriber in self.subscribers:
                                subscriber.take(line, key)
                    break
                except errors.ClusterUnavailable as error:
                    logger.info("log stream of %s/%s cut, resuming: %s", self.namespace, self.source.pod, error)
                    if self.stop.wait(RETRY_SECONDS):
                        break
                except errors.ClusterError as error:
                    reason = str(error)
                    break
        except Exception:  # noqa: BLE001 - the readers must always hear that it ended
            logger.exception("log stream of %s/%s failed", self.namespace, self.source.pod)
            reason = "reading the log failed (see the server log)"
        self._finish(reason)


class _CommandFollow(_Upstream):
    """One run of a command source's command in one container, on one event loop (exec streams are
    asyncio), relayed to every reader there. It ends with the command; it is not run again by itself."""

    def __init__(self, hub: _Hub, key: tuple, namespace: str, source: Source, loop: asyncio.AbstractEventLoop):
        super().__init__(hub, key, namespace, source)
        self.loop = loop
        self.caught_up = False
        self.task = loop.create_task(self.run())

    def halt(self) -> None:
        try:
            self.loop.call_soon_threadsafe(self.task.cancel)
        except RuntimeError:  # the loop has closed: the task went with it
            pass

    def add(self, subscriber: _Subscriber, position: Position | None, tail: int | None) -> None:
        """Called with the hub's lock held: replay what the reader lacks (see the module docstring), then relay."""
        lines = [line for line, _ in self.recent]
        start = None if position is None else self._after_position(position)
        if start is None and (position is None or not position.text):  # a new reader: the last `tail` lines
            start = 0 if tail is None else max(0, len(lines) - tail)
        if start is None:
            subscriber.last, subscriber.held = position.text, list(lines)
            if self.caught_up:
                subscriber.release()
        else:
            for line in lines[start:]:
                subscriber.stream._push(line)
        if self.caught_up:
            subscriber.stream._mark_caught_up(self.source.pod)
        self.subscribers.append(subscriber)

    def _after_position(self, position: Position) -> int | None:
        """Where in `recent` the lines after ``position`` begin; None if this run does not hold its line."""
        key, seen = stamp_key(position.stamp), 0
        for index, (line, line_key) in enumerate(self.recent):
            if line_key == key:
                seen += 1
                if seen == position.seen:
                    return index + 1 if not position.text or line.text == position.text else None
        return None

    def _publish(self, texts: list[str]) -> None:
        stamp = now_stamp()
        key = stamp_key(stamp)
        with self.hub.lock:
            for text in texts:
                line = LogLine(self.source.pod, stamp, text)
                self.recent.append((line, key))
                for subscriber in self.subscribers:
                    subscriber.take(line, key)

    def _catch_up(self) -> None:
        with self.hub.lock:
            self.caught_up = True
            subscribers = list(self.subscribers)
            for subscriber in subscribers:
                if subscriber.held is not None:
                    subscriber.release()
        for subscriber in subscribers:
            subscriber.stream._mark_caught_up(self.source.pod)

    async def run(self) -> None:
        """Run the command and relay its stdout and stderr, line by line, until it ends or nobody reads."""
        reason = "the command ended"
        stream = reading = None
        try:
            stream = await exec_open(
                namespace=self.namespace,
                pod=self.source.pod,
                container=self.source.container,
                command=list(self.source.command),
                tty=False,
                stdin=False,
            )
            lines = _Lines()
            while not self.stop.is_set():
                reading = reading or asyncio.ensure_future(stream.read())
                done, _ = await asyncio.wait({reading}, timeout=None if self.caught_up else CATCH_UP_QUIET)
                if not done:  # quiet: the backlog is out
                    self._catch_up()
                    continue
                item, reading = reading.result(), None
                if item is None:
                    break
                self._publish(lines.feed(item[1]))
            self._publish(lines.rest())
            if stream.failure:
                reason = stream.failure
            elif stream.exit_status is not None:
                reason = f"the command exited with status {stream.exit_status}"
        except asyncio.CancelledError:
            self.stop.set()  # halted: the readers left
        except errors.ClusterError as error:
            reason = str(error)
        except Exception:  # noqa: BLE001 - the readers must always hear that it ended
            logger.exception("log command in %s/%s failed", self.namespace, self.source.pod)
            reason = "running the command failed (see the server log)"
        finally:
            if reading is not None:
                reading.cancel()
            if stream is not None:
                await stream.close()
            self._finish(reason)


class _Hub:
    """This process's shared follows, by cluster, namespace, pod and container."""

    def __init__(self):
        self.lock = threading.Lock()
        self.upstreams: dict[tuple, _Upstream] = {}

    def join(self, stream: LogStream, source: Source, dedupe: _Dedupe, *, from_start: bool) -> bool:
        """Relay ``source`` to ``stream`` from ``dedupe``'s position through a shared follow; False when
        that cannot be done without a gap (the caller follows on its own)."""
        if stream.previous or not stream.follow:
            return False
        key = (id(get_cluster()), stream.namespace, source.pod, source.container, ())
        with self.lock:
            if stream._stop.is_set():
                return True  # closed meanwhile: nothing to relay
            upstream = self.upstreams.get(key)
            if upstream is None or upstream.ended:
                upstream = self.upstreams[key] = _LogFollow(self, key, stream.namespace, source, dedupe, from_start)
                threading.Thread(target=upstream.run, name=f"logs {stream.namespace}/{source.pod}", daemon=True).start()
            elif not upstream.covers(dedupe):
                return False
            upstream.add(_Subscriber(stream, source, dedupe))
        return True

    def join_command(self, stream: LogStream, source: Source) -> None:
        """Relay the run of ``source``'s command to ``stream`` (starting the run if none is going on
        this event loop). Call from that loop."""
        loop = asyncio.get_running_loop()
        key = (id(get_cluster()), stream.namespace, source.pod, source.container, source.command, id(loop))
        with self.lock:
            if stream._stop.is_set():
                return
            upstream = self.upstreams.get(key)
            if upstream is None or upstream.ended:
                upstream = self.upstreams[key] = _CommandFollow(self, key, stream.namespace, source, loop)
            upstream.add(_Subscriber(stream, source, None), stream.resume.get(source.pod), stream.tail)

    def leave(self, stream: LogStream) -> None:
        """``stream`` reads no more; a follow nobody reads ends."""
        with self.lock:
            for upstream in list(self.upstreams.values()):
                upstream.subscribers = [s for s in upstream.subscribers if s.stream is not stream]
                if not upstream.subscribers:
                    upstream.stop.set()
                    del self.upstreams[upstream.key]
                    upstream.halt()


def _interrupt(stop: threading.Event) -> None:
    try:
        get_cluster().interrupt_watches(stop)
    except errors.ClusterError:
        pass


_HUB = _Hub()

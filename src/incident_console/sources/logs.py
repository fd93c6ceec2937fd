"""Container logs for the containers in view: the SDK's follow stream, batched and capped.

One daemon thread per followed container reads `logs(stream=True, follow=True, timestamps=True)`
(long-lived, so not in the loop's small default executor). Lines land in a bounded buffer;
the loop takes them every `batch_interval` seconds, sanitizes (they are data, never markup or
terminal control) and classifies them, and emits LogLine events. A container that logs faster
than `max_lines_per_batch` per batch loses its oldest lines, replaced by one
"[… N lines dropped]" line: we never fall behind without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from incident_console.domain.events import LogLine, SourceStatus
from incident_console.domain.logsignals import classify
from incident_console.domain.text import MAX_LINE, sanitize
from incident_console.sources.base import Backoff, Emit, Source, one_line
from incident_console.sources.inventory import ContainerDirectory, parse_docker_time
from incident_console.transport.base import Host, TransportError

if TYPE_CHECKING:
    import docker

    from incident_console.monitor.state import HostState


#: A followed container's stream that ended (it restarted, or the API said no) is asked for
#: again after this long, not at the next batch.
RESTART_AFTER_S = 2.0


class DockerStamps:
    """Docker log timestamps to epoch seconds; the date and time of day are parsed once a second.

    ``2026-11-30T18:33:12.123456789Z`` (what ``timestamps=True`` gives) is the epoch of its
    first 19 characters, kept from the line before when they are the same, plus the fraction.
    Anything else goes to :func:`parse_docker_time`.
    """

    def __init__(self) -> None:
        self._head = ""
        self._epoch = 0.0

    def parse(self, stamp: str) -> float | None:
        if len(stamp) > 21 and stamp[19] == "." and stamp[-1] == "Z" and stamp[20:-1].isdigit():
            head = stamp[:19]
            if head != self._head:
                whole = parse_docker_time(head + "Z")
                if whole is None:
                    return None
                self._head, self._epoch = head, whole
            return self._epoch + int(stamp[20:-1][:6].ljust(6, "0")) / 1e6
        return parse_docker_time(stamp)


class _Buffer:
    """Lines read by one follower thread, bounded, with a count of what did not fit."""

    def __init__(self, cap: int) -> None:
        self.lock = threading.Lock()
        self.lines: deque[tuple[float | None, str]] = deque(maxlen=cap)
        self.count = 0

    def add(self, when: float | None, text: str) -> None:
        with self.lock:
            self.lines.append((when, text))
            self.count += 1

    def take(self) -> tuple[list[tuple[float | None, str]], int]:
        with self.lock:
            items = list(self.lines)
            dropped = self.count - len(items)
            self.lines.clear()
            self.count = 0
        return items, dropped


class _Follower:
    """One container's log stream, read in its own daemon thread."""

    def __init__(self, client: docker.DockerClient, cid: str, tail: int, since: float | None,
                 cap: int, *, follow: bool = True) -> None:  # fmt: skip
        """`follow=False` reads once what was written after `since` (or the tail) and ends."""
        self.cid = cid
        self.follows = follow
        self.buffer = _Buffer(cap)
        self.last_time: float | None = since
        self.done = threading.Event()
        self._stream: Any = None
        self._stop = False
        self._stamps = DockerStamps()
        self._skip_until: float | None = None
        self._thread = threading.Thread(
            target=self._read, args=(client, tail, since), name=f"logs-{cid[:12]}", daemon=True
        )
        self._thread.start()

    def _read(self, client: docker.DockerClient, tail: int, since: float | None) -> None:
        try:
            if not self.follows:
                self._catch_up(client, tail)
                return
            kwargs: dict[str, Any] = {"stream": True, "follow": True, "timestamps": True}
            if since is not None:
                # dockerd's `since` takes fractions; it is inclusive, so the line read last
                # comes again: _add skips lines up to it.
                kwargs["since"] = since
                self._skip_until = since
            else:
                kwargs["tail"] = tail
            self._stream = client.api.logs(self.cid, **kwargs)
            if self._stop:
                return
            pending = b""
            for chunk in self._stream:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    self._add(raw)
                if len(pending) > 65536:  # a line with no end: cut it rather than grow
                    self._add(pending)
                    pending = b""
            if pending:
                self._add(pending)
            if not self._stop:
                self._catch_up(client, tail)
        except Exception:  # noqa: BLE001 - removed container, closed socket: end quietly
            pass
        finally:
            self.done.set()

    def _catch_up(self, client: docker.DockerClient, tail: int) -> None:
        """Read what the container wrote after the last line read (or its tail if none was).

        dockerd can end a follow stream when the container stops before sending the lines it
        wrote just before (seen in CI under load: a dying container's traceback missing). One
        plain read from the last timestamp gets them; lines at or before it are the stream's.
        """
        after = self.last_time
        if after is None:
            data = client.api.logs(self.cid, stream=False, timestamps=True, tail=tail)
        else:
            data = client.api.logs(self.cid, stream=False, timestamps=True, since=after)
        for raw in bytes(data).split(b"\n"):
            if not raw:
                continue
            stamp = raw.split(b" ", 1)[0].decode("ascii", errors="replace")
            when = self._stamps.parse(stamp)
            if after is None or (when is not None and when > after):
                self._add(raw)

    def _add(self, raw: bytes) -> None:
        text = raw.decode("utf-8", errors="replace").rstrip("\r")
        stamp, _, rest = text.partition(" ")
        when = self._stamps.parse(stamp)
        if when is None:
            rest = text
        else:
            if self._skip_until is not None:
                if when <= self._skip_until:
                    return
                self._skip_until = None
            self.last_time = when
        self.buffer.add(when, rest)

    def stop(self) -> None:
        self._stop = True
        if self._stream is not None:
            with contextlib.suppress(Exception):
                self._stream.close()


class LogFollower(Source):
    """Follows the logs of every running container, or of a chosen set (`follow(ids)`).

    It starts following all of them: a console opened on a server whose containers already
    run shows their recent lines (the tail) and then the stream, with no one having to ask.
    """

    name = "logs"

    def __init__(
        self,
        tail: int = 200,
        batch_interval: float = 0.075,
        max_lines_per_batch: int = 500,
    ) -> None:
        """Args:
        tail: lines of history to show when a container starts being followed.
        batch_interval: seconds between deliveries to emit.
        max_lines_per_batch: per container and batch; more are dropped with a marker line.
            500 a batch lets a busy loop (batches 0.1-0.2 s apart instead of 0.075) still
            take a few thousand lines a second before it drops any.
        """
        self.tail = tail
        self.batch_interval = batch_interval
        self.max_lines_per_batch = max_lines_per_batch
        #: None: every running container the inventory knows (the default); else these ids.
        self._wanted: set[str] | None = None
        self._followers: dict[str, _Follower] = {}
        self._resume: dict[str, float | None] = {}
        #: A container whose stream ended is followed again no sooner than this (monotonic).
        self._not_before: dict[str, float] = {}
        #: Containers whose stream ended while they ran (as far as we knew): once the inventory
        #: says they stopped, their log is read once more. dockerd reports `die` after the log
        #: driver is closed, so that read has every line; the stream may have ended before.
        self._final_read: set[str] = set()

    def follow(self, ids: Iterable[str] | None) -> None:
        """Follow exactly these container ids from now on (others stop); None: all of them."""
        self._wanted = None if ids is None else set(ids)

    def wanted(self, containers: ContainerDirectory) -> set[str]:
        """The ids to follow now: the chosen set, or every container that is not gone."""
        if self._wanted is not None:
            return self._wanted
        return {cid for cid, ref in containers.refs().items() if not ref.gone}

    @property
    def follows_all(self) -> bool:
        """True while every container is followed (no set was chosen)."""
        return self._wanted is None

    @property
    def following(self) -> frozenset[str]:
        """The ids with a live follower."""
        return frozenset(cid for cid, f in self._followers.items() if not f.done.is_set())

    async def run(self, host: Host, state: HostState, emit: Emit) -> None:
        """Deliver batches until cancelled; followers stop with it."""
        try:
            client = await self._client(host, emit)
            emit(SourceStatus(time=time.time(), source=self.name, method="docker-logs"))
            containers = ContainerDirectory(state)  # ids, names, states: no samples or logs
            while True:
                self._reconcile(client, containers, emit)
                self._deliver(containers, emit)
                await asyncio.sleep(self.batch_interval)
        finally:
            for follower in self._followers.values():
                follower.stop()
            self._followers.clear()

    async def _client(self, host: Host, emit: Emit) -> docker.DockerClient:
        backoff = Backoff(first=2.0, most=30.0)
        while True:
            try:
                return await host.docker()
            except (TransportError, OSError) as exc:
                wait = backoff.next()
                emit(
                    SourceStatus(
                        time=time.time(),
                        source=self.name,
                        method="docker-logs",
                        ok=False,
                        detail=f"{one_line(exc)}; retrying in {wait:.0f} s",
                    )
                )
                await asyncio.sleep(wait)

    def _reconcile(
        self, client: docker.DockerClient, containers: ContainerDirectory, emit: Emit
    ) -> None:
        wanted = self.wanted(containers)
        refs = containers.refs()
        for cid in list(self._followers):
            follower = self._followers[cid]
            if cid not in wanted:
                follower.stop()
            if cid not in wanted or follower.done.is_set():
                # Keep where it got to: a restarted container resumes, not replays its tail.
                # What it read before its stream ended is delivered (a dying container's
                # last lines are the ones that matter).
                self._resume[cid] = follower.last_time
                self._flush_one(follower, containers, emit)
                if follower.done.is_set():
                    self._not_before[cid] = time.monotonic() + RESTART_AFTER_S
                    if follower.follows and cid in wanted:
                        self._final_read.add(cid)
                del self._followers[cid]
        self._final_read &= wanted
        if len(self._resume) > len(refs):
            # Following all, removed containers come and go: forget where theirs got to.
            for cid in [c for c in self._resume if c not in refs]:
                self._resume.pop(cid, None)
                self._not_before.pop(cid, None)
        now = time.monotonic()
        for cid in wanted - set(self._followers):
            ref = refs.get(cid)
            if ref is None or ref.gone or ref.state != "running":
                # Unknown, gone or stopped: follow once the inventory says it runs. A stopped
                # one whose stream ended gets its one last read now.
                if ref is not None and cid in self._final_read:
                    self._final_read.discard(cid)
                    self._followers[cid] = _Follower(
                        client, cid, self.tail, self._resume.get(cid),
                        self.max_lines_per_batch, follow=False,
                    )  # fmt: skip
                continue
            if now < self._not_before.get(cid, 0.0):
                continue  # its stream just ended: a request a tick would load the server
            self._final_read.discard(cid)  # the new stream starts where the last one ended
            since = self._resume.get(cid)
            self._followers[cid] = _Follower(
                client, cid, self.tail, since, self.max_lines_per_batch
            )

    def _deliver(self, containers: ContainerDirectory, emit: Emit) -> None:
        for follower in self._followers.values():
            self._flush_one(follower, containers, emit)

    def _flush_one(self, follower: _Follower, containers: ContainerDirectory, emit: Emit) -> None:
        items, dropped = follower.buffer.take()
        if not items and not dropped:
            return
        ref = containers.get(follower.cid)
        name = ref.name if ref else follower.cid[:12]
        now = time.time()
        if dropped:
            first = items[0][0] if items and items[0][0] is not None else now
            emit(LogLine(time=first, id=follower.cid, container=name,
                         text=f"[… {dropped} lines dropped]"))  # fmt: skip
        for when, raw in items:
            # Most lines are printable ASCII, which sanitize returns unchanged: skip its
            # five regex passes for them (at 1,000 lines/s this is a tenth of our loop).
            plain = raw.isascii() and raw.isprintable() and len(raw) <= MAX_LINE
            text = raw if plain else sanitize(raw)
            emit(
                LogLine(
                    time=when if when is not None else now,
                    id=follower.cid,
                    container=name,
                    text=text,
                    signal=classify(text),
                )
            )

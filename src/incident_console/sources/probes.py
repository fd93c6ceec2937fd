"""HTTP probes from the console's side: is the application answering, and how fast."""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from typing import TYPE_CHECKING

from incident_console.domain.events import ProbeResult, SourceStatus
from incident_console.sources.base import Emit, Source

if TYPE_CHECKING:
    from incident_console.monitor.state import HostState
    from incident_console.transport.base import Host


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer (3xx counts as up); following it would probe another URL."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def probe(url: str, timeout: float) -> ProbeResult:  # noqa: ASYNC109 - runs in a thread
    """One GET of `url` (blocking: call it in a thread). Never raises."""
    started = time.time()
    t0 = time.monotonic()
    status: int | None = None
    error = ""
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "incident-console probe"})
        with _OPENER.open(request, timeout=timeout) as response:
            status = int(response.status)
            response.read(65536)
    except urllib.error.HTTPError as exc:
        status = exc.code
        error = f"HTTP {exc.code} {exc.reason}"
        with contextlib.suppress(Exception):
            exc.close()
    except urllib.error.URLError as exc:
        error = str(exc.reason)[:200]
    except (TimeoutError, OSError, ValueError) as exc:
        error = (str(exc) or type(exc).__name__)[:200]
    latency = (time.monotonic() - t0) * 1000.0
    return ProbeResult(
        time=started,
        url=url,
        status=status,
        latency_ms=round(latency, 1) if status is not None else None,
        error=error,
    )


class ProbeSource(Source):
    """Probes each URL every `interval` seconds (all URLs concurrently)."""

    name = "probes"

    def __init__(self, urls: Iterable[str], interval: float = 5.0, timeout: float = 3.0) -> None:
        self.urls = tuple(urls)
        self.interval = interval
        self.timeout = timeout

    async def run(self, host: Host, state: HostState, emit: Emit) -> None:
        """Probe until cancelled."""
        emit(
            SourceStatus(
                time=time.time(),
                source=self.name,
                method="http",
                ok=bool(self.urls),
                detail=f"{len(self.urls)} URLs every {self.interval:g} s" if self.urls else
                "no URLs configured",
            )
        )  # fmt: skip
        if not self.urls:
            await asyncio.Event().wait()  # nothing to do, but the contract is "until cancelled"
        next_at = time.monotonic()
        while True:
            results = await asyncio.gather(
                *(asyncio.to_thread(probe, url, self.timeout) for url in self.urls)
            )
            for result in results:
                emit(result)
            next_at = max(next_at + self.interval, time.monotonic())
            await asyncio.sleep(next_at - time.monotonic())

"""One browser endpoint's lifecycle: resolve, connect, run, notice the loss, back off, repeat.

``browser_up`` comes from here. The websocket URL is re-read from ``/json/version`` on every
attempt, because its path holds a per-launch id that changes when the browser restarts. The
backoff resets after a successful connection (the shape of websockets' reconnect loop).
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from .cdp import CDPError, Connection, ConnectionLost, Event
from .instrument import InstrumentConfig
from .state import ExporterState
from .targets import TargetManager, UrlFilter

log = logging.getLogger(__name__)

BACKOFF_INITIAL = 0.25
BACKOFF_FACTOR = 2.0
BACKOFF_MAX = 5.0  # a browser back from a restart is picked up within this


def backoff() -> Iterator[float]:
    delay = BACKOFF_INITIAL
    while True:
        yield delay
        delay = min(delay * BACKOFF_FACTOR, BACKOFF_MAX)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A browser to watch: a name for the ``browser`` label and where to reach it."""

    name: str
    url: str  # http://host:port (DevTools HTTP) or ws://... (the browser websocket itself)


def resolve_websocket_url(url: str, timeout: float = 5.0) -> tuple[str, str | None]:
    """The browser websocket URL and product version of an endpoint (blocking: run in a thread)."""
    if url.startswith(("ws://", "wss://")):
        return url, None
    with urllib.request.urlopen(url.rstrip("/") + "/json/version", timeout=timeout) as response:
        info = json.loads(response.read(1 << 20))
    ws_url = info.get("webSocketDebuggerUrl")
    if not isinstance(ws_url, str):
        raise ConnectionLost(f"{url}/json/version has no webSocketDebuggerUrl")
    # Chrome names itself by the address it bound; keep the host we reached it by (containers).
    given, reported = urlsplit(url), urlsplit(ws_url)
    ws_url = reported._replace(netloc=f"{given.hostname}:{reported.port or given.port}").geturl()
    return ws_url, info.get("Browser")


class BrowserSupervisor:
    def __init__(
        self,
        endpoint: Endpoint,
        *,
        state: ExporterState,
        config: InstrumentConfig,
        url_filter: UrlFilter,
        keep_open: tuple[str, ...] = (),
    ) -> None:
        self.endpoint = endpoint
        self.state = state
        self.config = config
        self.url_filter = url_filter
        self.keep_open = keep_open
        self.connects = 0

    async def run(self) -> None:
        """Keep a connection to the browser until cancelled."""
        self.state.browser(self.endpoint.name)
        delays = backoff()
        while True:
            try:
                await self._connect_once()
                delays = backoff()  # it worked for a while: start over from the short delay
            except (CDPError, OSError, ValueError) as exc:
                log.warning("browser %s: %s", self.endpoint.name, exc)
            finally:
                self.state.browser_disconnected(self.endpoint.name)
            await asyncio.sleep(next(delays))

    async def _connect_once(self) -> None:
        ws_url, version = await asyncio.to_thread(resolve_websocket_url, self.endpoint.url)
        manager: TargetManager | None = None

        def on_event(event: Event) -> None:
            if manager is not None:
                manager.on_event(event)

        connection = await Connection.open(ws_url, on_event)
        try:
            manager = TargetManager(
                connection,
                browser=self.endpoint.name,
                state=self.state,
                config=self.config,
                url_filter=self.url_filter,
                keep_open=self.keep_open if self.connects == 0 else (),
            )
            self.state.browser_connected(self.endpoint.name, version)
            await manager.start()
            self.connects += 1
            log.info("browser %s: connected (%s)", self.endpoint.name, version or ws_url)
            await connection.closed
            raise ConnectionLost("the browser closed the connection")
        finally:
            if manager is not None:
                manager.stop()
            await connection.close()

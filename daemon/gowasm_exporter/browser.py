"""One browser endpoint's lifecycle: resolve, connect, run, notice the loss, back off, repeat.

``browser_up`` comes from here. The websocket URL is re-read from ``/json/version`` on every
attempt, because its path holds a per-launch id that changes when the browser restarts. The
backoff resets after a successful connection (the shape of websockets' reconnect loop).

A connection can die without the socket saying so (a network cut that leaves the TCP connection
half open, a browser frozen by the OS): an application heartbeat (``Browser.getVersion``, answered
by the browser process itself, never by a page) notices it within ``HEARTBEAT_INTERVAL`` plus the
command timeout, and the connection is dropped and rebuilt like any other.

Each supervisor fails alone: whatever one browser does (vanish, answer garbage, stall), the
others and the HTTP server keep running, because nothing but cancellation leaves :meth:`run`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .cdp import CDPError, CommandTimeout, Connection, ConnectionLost, Event
from .health import ExporterHealth
from .instrument import InstrumentConfig
from .state import ExporterState
from .targets import KeptPage, TargetManager, UrlFilter

log = logging.getLogger(__name__)

# Retry delays after a lost or failed connection. The cap is what bounds the time to notice a
# browser that came back: the issue promises 5 s, and one attempt against a closed port costs
# nothing (connection refused), so a short cap is cheap even when a browser is gone for days.
BACKOFF_INITIAL = 0.25
BACKOFF_FACTOR = 2.0
BACKOFF_MAX = 2.0

HEARTBEAT_INTERVAL = 2.0
FAILURES_LOGGED = 5  # failed attempts in a row logged as warnings; then one in FAILURE_REMINDER
FAILURE_REMINDER = 150  # about every five minutes at the capped backoff
RESOLVE_TIMEOUT = 5.0
MAX_VERSION_BYTES = 1 << 20


def backoff() -> Iterator[float]:
    delay = BACKOFF_INITIAL
    while True:
        yield delay
        delay = min(delay * BACKOFF_FACTOR, BACKOFF_MAX)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A browser to watch: a name for the ``browser`` label and where to reach it.

    ``locate``, when given, is awaited before every attempt for the current HTTP endpoint: the
    embedded Chromium gets a new port each time it is relaunched.
    """

    name: str
    url: str  # http://host:port (DevTools HTTP) or ws://... (the browser websocket itself)
    locate: Callable[[], Awaitable[str]] | None = None

    async def current_url(self) -> str:
        return self.url if self.locate is None else await self.locate()


def _websocket_url(url: str, info: Any) -> tuple[str, str | None]:
    """The browser websocket URL in a ``/json/version`` answer, rebased on the address we used."""
    if not isinstance(info, dict) or not isinstance(info.get("webSocketDebuggerUrl"), str):
        raise ConnectionLost(f"{url}/json/version has no webSocketDebuggerUrl")
    version = info.get("Browser")
    # Chrome names itself by the address it bound (127.0.0.1:9222 inside a container, behind a
    # port forward or a proxy); the DevTools HTTP server and the websocket share one listener,
    # so the host and port we reached it by are the ones to use.
    given, reported = urlsplit(url), urlsplit(info["webSocketDebuggerUrl"])
    netloc = given.netloc.rpartition("@")[2] if given.port else f"{given.hostname}:{reported.port}"
    return reported._replace(netloc=netloc).geturl(), version if isinstance(version, str) else None


def resolve_websocket_url(url: str, timeout: float = RESOLVE_TIMEOUT) -> tuple[str, str | None]:
    """The browser websocket URL and product version of an endpoint (blocking; for tools and tests)."""
    if url.startswith(("ws://", "wss://")):
        return url, None
    with urllib.request.urlopen(url.rstrip("/") + "/json/version", timeout=timeout) as response:
        return _websocket_url(url, json.loads(response.read(MAX_VERSION_BYTES)))


async def fetch_websocket_url(url: str, timeout: float = RESOLVE_TIMEOUT) -> tuple[str, str | None]:
    """:func:`resolve_websocket_url` on the event loop: cancellable, so shutdown never waits on it.

    A tiny HTTP/1.1 GET is all ``/json/version`` needs. Chrome's DevTools server keeps the
    connection open after answering, so the body is read by its ``Content-Length`` (bounded).
    """
    if url.startswith(("ws://", "wss://")):
        return url, None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url}: expected http(s)://host:port or ws://...")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.netloc.rpartition("@")[2]
    request = f"GET {parts.path.rstrip('/')}/json/version HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(
            parts.hostname, port, ssl=True if parts.scheme == "https" else None, limit=MAX_VERSION_BYTES
        )
        try:
            writer.write(request.encode("ascii"))
            body = await _read_http_body(url, reader)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            raise ConnectionLost(f"{url}/json/version: not a usable HTTP answer ({exc})") from exc
        finally:
            writer.close()
    return _websocket_url(url, json.loads(body))


async def _read_http_body(url: str, reader: asyncio.StreamReader) -> bytes:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    lines = head.split("\r\n")
    status = lines[0].split(" ", 2)
    if len(status) < 2 or status[1] != "200":
        raise ConnectionLost(f"{url}/json/version answered {lines[0]!r}")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while len(body) <= MAX_VERSION_BYTES:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                return body
            body += await reader.readexactly(size)
            await reader.readline()
        raise ConnectionLost(f"{url}/json/version: answer too large")
    length = headers.get("content-length", "")
    if length.isdigit():
        if int(length) > MAX_VERSION_BYTES:
            raise ConnectionLost(f"{url}/json/version: answer too large")
        return await reader.readexactly(int(length))
    return await reader.read(MAX_VERSION_BYTES)


class BrowserSupervisor:
    def __init__(
        self,
        endpoint: Endpoint,
        *,
        state: ExporterState,
        config: InstrumentConfig,
        url_filter: UrlFilter,
        keep_open: tuple[str, ...] = (),
        health: ExporterHealth | None = None,
        reload_after_exit: float | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.state = state
        self.config = config
        self.url_filter = url_filter
        self.health = health if health is not None else ExporterHealth()
        self.reload_after_exit = reload_after_exit
        # Kept-open pages outlive connections: after a reconnect, the page that is still there
        # (same target id) is kept, and only a missing one is opened again.
        self.kept = [KeptPage(url) for url in keep_open]
        self.health.keep_open(k.page for k in self.kept)
        self.connects = 0

    async def run(self) -> None:
        """Keep a connection to the browser until cancelled; nothing else ends it."""
        name = self.endpoint.name
        self.state.browser(name)
        delays = backoff()
        failures = 0  # attempts in a row that did not connect
        while True:
            connected_before = self.connects
            try:
                await self._connect_once()
            except CDPError as exc:
                failures = self._log_failure(failures, connected_before, "%s", exc)
            except (OSError, TimeoutError, ValueError) as exc:
                failures = self._log_failure(
                    failures, connected_before, "cannot reach %s: %s", self.endpoint.url, exc or type(exc).__name__
                )
            except Exception:
                # A bug, or a peer that speaks something unexpected: never let it end the daemon.
                failures = self._log_failure(failures, connected_before, "unexpected failure", exc_info=True)
            finally:
                self.state.browser_disconnected(name)
            if self.connects > connected_before:
                delays = backoff()  # it worked for a while: start over from the short delay
            await asyncio.sleep(next(delays))

    def _log_failure(self, failures: int, connected_before: int, message: str, *args: Any, **kwargs: Any) -> int:
        """Log a lost connection or failed attempt; return the count of failed attempts in a row.

        A browser away for days must not write a line every two seconds: the first failures are
        warnings, then one reminder every ``FAILURE_REMINDER`` attempts; the rest go to debug.
        """
        failures = 0 if self.connects > connected_before else failures + 1
        loud = failures <= FAILURES_LOGGED or failures % FAILURE_REMINDER == 0
        suffix = f" (attempt {failures}, retrying)" if failures else ""
        log.log(
            logging.WARNING if loud else logging.DEBUG,
            "browser %s: " + message + suffix,
            self.endpoint.name,
            *args,
            **kwargs,
        )
        return failures

    async def _connect_once(self) -> None:
        name = self.endpoint.name
        started = time.monotonic()
        manager: TargetManager | None = None

        def on_event(event: Event) -> None:
            if manager is not None:
                manager.on_event(event)

        try:
            url = await self.endpoint.current_url()
            ws_url, version = await fetch_websocket_url(url, timeout=min(RESOLVE_TIMEOUT, self.config.command_timeout))
            connection = await Connection.open(ws_url, on_event, open_timeout=self.config.command_timeout)
        except Exception:
            self.health.connect_failures[name] += 1
            self.health.refreshed(name, "connect", started, False)
            raise
        try:
            manager = TargetManager(
                connection,
                browser=name,
                state=self.state,
                config=self.config,
                url_filter=self.url_filter,
                kept=self.kept,
                health=self.health,
                reload_after_exit=self.reload_after_exit,
            )
            self.state.browser_connected(name, version)
            try:
                await manager.start()
            except Exception:
                self.health.connect_failures[name] += 1
                self.health.refreshed(name, "connect", started, False)
                raise
            self.connects += 1
            self.health.connections[name] += 1
            self.health.refreshed(name, "connect", started, True)
            log.info("browser %s: connected (%s)", name, version or ws_url)
            await self._heartbeat(connection)
        finally:
            if manager is not None:
                manager.stop()
            await connection.close()

    async def _heartbeat(self, connection: Connection) -> None:
        """Return never; raise ConnectionLost when the socket closes or the browser stops answering."""
        name = self.endpoint.name
        while True:
            done, _ = await asyncio.wait({connection.closed}, timeout=HEARTBEAT_INTERVAL)
            if done:
                raise ConnectionLost("the browser closed the connection")
            started = time.monotonic()
            try:
                await connection.send("Browser.getVersion", timeout=self.config.command_timeout)
            except CommandTimeout as exc:
                self.health.refreshed(name, "heartbeat", started, False)
                raise ConnectionLost(f"no heartbeat answer within {exc.timeout:g} s: dropping the connection") from exc
            except CDPError:
                self.health.refreshed(name, "heartbeat", started, False)
                raise
            self.health.refreshed(name, "heartbeat", started, True)

"""A browser endpoint's lifecycle against fakes that misbehave on demand: a DevTools HTTP server
that keeps its connection open or answers garbage, and a *fake* CDP peer that stops answering."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable

import pytest
from websockets.asyncio.server import ServerConnection, serve

from gowasm_exporter import browser
from gowasm_exporter.browser import BrowserSupervisor, Endpoint, backoff, fetch_websocket_url
from gowasm_exporter.cdp import ConnectionLost
from gowasm_exporter.health import ExporterHealth
from gowasm_exporter.instrument import InstrumentConfig
from gowasm_exporter.state import ExporterState
from gowasm_exporter.targets import UrlFilter

VERSION = {"Browser": "Chrome/156.0", "webSocketDebuggerUrl": "ws://127.0.0.1:9222/devtools/browser/abc"}


@contextlib.asynccontextmanager
async def http_server(answer: Callable[[bytes], bytes]) -> AsyncIterator[str]:
    """A one-route HTTP server that writes ``answer(request)`` and, like Chrome's DevTools server,
    leaves the connection open afterwards."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        writer.write(answer(request))
        await writer.drain()
        with contextlib.suppress(ConnectionError):
            await reader.read()  # until the client closes
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


def http_ok(body: bytes, *, chunked: bool = False) -> bytes:
    if chunked:
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:10], body[10:])) + b"0\r\n\r\n"
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def test_backoff_is_capped_so_a_returning_browser_is_found_within_5s() -> None:
    """The retry delay grows from 0.25 s and stays at 2 s, under the 5 s promise."""
    delays = backoff()
    assert [next(delays) for _ in range(7)] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0, 2.0]


@pytest.mark.parametrize("chunked", [False, True])
async def test_json_version_is_read_by_length_and_rebased_on_the_address_used(chunked: bool) -> None:
    """The websocket URL takes the host and port the endpoint was reached by (a proxy, a port
    forward), and the answer is read by its length although the server keeps the connection."""
    seen: list[bytes] = []

    def answer(request: bytes) -> bytes:
        seen.append(request)
        return http_ok(json.dumps(VERSION).encode(), chunked=chunked)

    async with http_server(answer) as url:
        port = url.rsplit(":", 1)[1]
        ws_url, version = await asyncio.wait_for(fetch_websocket_url(url, timeout=5), 5)
    assert ws_url == f"ws://127.0.0.1:{port}/devtools/browser/abc"
    assert version == "Chrome/156.0"
    assert seen[0].startswith(b"GET /json/version HTTP/1.1\r\nHost: 127.0.0.1:" + port.encode())


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
        http_ok(b"[]"),
        http_ok(b'{"webSocketDebuggerUrl": 42}'),
    ],
)
async def test_a_json_version_without_a_websocket_url_is_a_connection_failure(answer: bytes) -> None:
    """An error status or a body without a usable webSocketDebuggerUrl fails as ConnectionLost."""
    async with http_server(lambda _: answer) as url:
        with pytest.raises(ConnectionLost):
            await fetch_websocket_url(url, timeout=5)


async def test_a_silent_endpoint_times_out() -> None:
    """A server that accepts and never answers costs the attempt's timeout, no more."""
    async with http_server(lambda _: b"") as url:
        with pytest.raises(TimeoutError):
            await fetch_websocket_url(url, timeout=0.3)


def supervisor(endpoint: str, health: ExporterHealth, state: ExporterState) -> BrowserSupervisor:
    config = InstrumentConfig(binding="b", poll_interval=1.0, command_timeout=0.3)
    return BrowserSupervisor(
        Endpoint(endpoint, endpoint), state=state, config=config, url_filter=UrlFilter(), health=health
    )


async def test_a_browser_answering_garbage_never_stops_its_supervisor(caplog: pytest.LogCaptureFixture) -> None:
    """An endpoint answering nonsense is retried with backoff and counted; the supervisor runs on."""
    health, state = ExporterHealth(), ExporterState()
    async with http_server(lambda _: http_ok(b"[1, 2, 3]")) as url:
        task = asyncio.create_task(supervisor(url, health, state).run())
        try:
            with caplog.at_level(logging.WARNING, "gowasm_exporter.browser"):
                while health.connect_failures[url] < 3:
                    await asyncio.sleep(0.05)  # three attempts: 0.25 + 0.5 s of backoff
            assert not task.done()
            assert state.browsers[url].up is False
            assert health.refreshes[(url, "connect")].success is False
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_a_peer_that_stops_answering_is_dropped_by_the_heartbeat_and_reconnected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A FAKE CDP peer answers the setup, then never the heartbeat: each connection is dropped
    after the heartbeat's timeout, the browser reported down, and a new connection made."""
    monkeypatch.setattr(browser, "HEARTBEAT_INTERVAL", 0.1)
    connections = 0

    async def peer(ws: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        async for raw in ws:
            message = json.loads(raw)
            if message["method"] != "Browser.getVersion":  # the heartbeat: never answered
                await ws.send(json.dumps({"id": message["id"], "result": {}}))

    server = await serve(peer, "127.0.0.1", 0)
    url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/devtools/browser/fake"
    health, state = ExporterHealth(), ExporterState()
    task = asyncio.create_task(supervisor(url, health, state).run())
    try:
        while health.connections[url] < 2:
            await asyncio.sleep(0.02)
        assert health.reconnects(url) >= 1
        assert health.refreshes[(url, "heartbeat")].success is False
        assert connections >= 2
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        server.close()
        await server.wait_closed()

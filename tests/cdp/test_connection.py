"""The websocket adapter against a *fake* CDP peer: what a real browser cannot do on demand
(cut the socket mid-message, never answer, send garbage)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from websockets.asyncio.server import ServerConnection, serve

from gowasm_exporter.cdp import CommandTimeout, Connection, ConnectionLost, Event

Handler = Callable[[ServerConnection], Awaitable[None]]


@pytest.fixture
async def fake_peer() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """Start a fake CDP endpoint running ``handler`` per connection; yields its ws URL."""
    servers = []

    async def start(handler: Handler) -> str:
        server = await serve(handler, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}/devtools/browser/fake"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_answers_and_events_flow(fake_peer) -> None:
    """Answers resolve commands; events reach on_event; garbage in between is skipped."""

    async def handler(ws: ServerConnection) -> None:
        async for raw in ws:
            message = json.loads(raw)
            await ws.send("not json")
            await ws.send(json.dumps({"method": "Target.targetCreated", "params": {"n": message["id"]}}))
            await ws.send(json.dumps({"id": message["id"], "result": {"echo": message["params"]}}))

    events: list[Event] = []
    connection = await Connection.open(await fake_peer(handler), events.append)
    try:
        assert await connection.send("Echo.me", {"x": 1}) == {"echo": {"x": 1}}
        assert events == [Event("Target.targetCreated", {"n": 1}, None)]
    finally:
        await connection.close()


async def test_socket_cut_mid_message_fails_pending_calls_at_once(fake_peer) -> None:
    """A peer that dies mid-frame: every pending call fails with ConnectionLost, no timeout wait."""

    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.recv()
        # Half a frame header claiming a long payload, then the TCP connection is cut.
        ws.transport.write(b"\x81\x7e\x10\x00" + b'{"id": 1, "res')
        ws.transport.abort()

    connection = await Connection.open(await fake_peer(handler), lambda e: None)
    try:
        started = asyncio.get_running_loop().time()
        results = await asyncio.gather(
            connection.send("A.a", timeout=30), connection.send("B.b", timeout=30), return_exceptions=True
        )
        assert all(isinstance(r, ConnectionLost) for r in results), results
        assert asyncio.get_running_loop().time() - started < 5
        await asyncio.wait_for(connection.closed, 5)
        with pytest.raises(ConnectionLost):
            await connection.send("C.c")
    finally:
        await connection.close()


async def test_a_peer_that_never_answers_times_out(fake_peer) -> None:
    """A command with no answer fails with CommandTimeout after its own timeout."""

    async def handler(ws: ServerConnection) -> None:
        async for _ in ws:
            pass

    connection = await Connection.open(await fake_peer(handler), lambda e: None)
    try:
        with pytest.raises(CommandTimeout, match=r"Slow\.call: no answer within 0\.2 s"):
            await connection.send("Slow.call", timeout=0.2)
    finally:
        await connection.close()


async def test_unreachable_endpoint_is_connection_lost() -> None:
    """Connecting to a closed port is a ConnectionLost, not a raw OSError."""
    with pytest.raises(ConnectionLost):
        await Connection.open("ws://127.0.0.1:9/devtools/browser/x", lambda e: None, open_timeout=2)

"""The websocket adapter of the CDP client.

One reader task only decodes and routes: answers resolve futures, events go to a synchronous
``on_event`` callback that must not block (it enqueues; handlers run in other tasks). Awaiting a
handler in the reader would deadlock as soon as the handler sends a command.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from .errors import CommandTimeout, ConnectionLost, TargetClosed
from .protocol import Event, Router

log = logging.getLogger(__name__)

# CDP answers (DOM snapshots, large evaluate results) exceed websockets' 1 MiB default; puppeteer
# allows 256 MiB. Our own answers are small, so a lower cap still bounds a hostile peer.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

DEFAULT_TIMEOUT = 10.0
# How long closing waits for the browser's side of the close handshake: a stalled peer (a cut
# network) would otherwise hold a reconnect, or the daemon's shutdown, for websockets' 10 s.
CLOSE_TIMEOUT = 2.0


class _Expired(Exception):
    """A command's answer did not come within its timeout (raised into its future)."""


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(_Expired())


class CoalescingTransport:
    """The socket transport under the websocket, writing once per event-loop turn.

    websockets writes each frame with its own ``transport.write``, and a write on an idle socket
    is a ``send()`` system call: with many pages polled at once (``--poll-on-scrape`` polls them
    all just before a scrape), the daemon spent more time in those calls than in anything else
    (``bench/profile_daemon.py``). Frames written during one turn of the loop are joined and
    handed to the real transport at the end of the turn (``call_soon``), in order. Closing or
    half-closing flushes first; aborting drops what is pending, as the real transport does with
    its own buffer. Everything else is the real transport's.
    """

    def __init__(self, transport: asyncio.WriteTransport) -> None:
        self._transport = transport
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self._pending.append(bytes(data))

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending.clear()
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class Connection:
    """One websocket to a browser endpoint (``webSocketDebuggerUrl``)."""

    def __init__(self, ws: ClientConnection, on_event: Callable[[Event], None]) -> None:
        self._ws = ws
        if isinstance(ws.transport, asyncio.WriteTransport):
            ws.transport = CoalescingTransport(ws.transport)  # type: ignore[assignment]
        self._router = Router()
        self._on_event = on_event
        self._reader = asyncio.create_task(self._read(), name="cdp-reader")
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @classmethod
    async def open(cls, url: str, on_event: Callable[[Event], None], *, open_timeout: float = 10.0) -> Connection:
        try:
            ws = await websockets.connect(
                url,
                max_size=MAX_MESSAGE_BYTES,
                open_timeout=open_timeout,
                # websockets' keepalive has closed busy CDP connections (browser-use/cdp-use#25);
                # a dead browser is noticed through command timeouts and the socket closing.
                ping_interval=None,
                # No Origin header: Chrome >= 111 rejects non-allow-listed origins.
                compression=None,
                close_timeout=CLOSE_TIMEOUT,
            )
        except (TimeoutError, OSError, websockets.exceptions.WebSocketException) as exc:
            raise ConnectionLost(f"cannot connect to {url}: {exc}") from exc
        return cls(ws, on_event)

    async def _read(self) -> None:
        reason: BaseException | None = None
        try:
            async for raw in self._ws:
                try:
                    message = json.loads(raw)
                except ValueError:
                    log.warning("ignoring a CDP message that is not JSON")
                    continue
                event = self._router.feed(message)
                if event is not None:
                    try:
                        self._on_event(event)
                    except Exception:  # a handler bug must not stop the reader
                        log.exception("CDP event handler failed on %s", event.method)
        except websockets.exceptions.WebSocketException as exc:
            reason = exc
        except asyncio.CancelledError:
            reason = None
            raise
        finally:
            lost = ConnectionLost(f"connection to the browser closed: {reason or 'closed'}")
            self._router.fail_all(lost)
            if not self.closed.done():
                self.closed.set_result(None)

    async def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session_id: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> dict[str, Any]:
        """Send a command and wait for its result, at most ``timeout`` seconds."""
        command_id, message, future = self._router.prepare(method, params, session_id)
        if command_id:
            try:
                await self._ws.send(json.dumps(message))
            except websockets.exceptions.WebSocketException as exc:
                self._router.forget(command_id)
                raise ConnectionLost(f"{method}: connection closed") from exc
        # A timer on the answer's own future, not asyncio.wait_for: that wraps every command in
        # more callbacks than the command's own work (profiled with many pages polled at once).
        timer = asyncio.get_running_loop().call_later(timeout, _expire, future)
        try:
            return await future
        except _Expired:
            self._router.forget(command_id)
            raise CommandTimeout(method, timeout) from None
        except asyncio.CancelledError:
            self._router.forget(command_id)
            if future.done() and not future.cancelled():
                future.exception()  # timed out in the same turn: not an unretrieved exception
            raise
        finally:
            timer.cancel()

    def session(self, session_id: str) -> Session:
        return Session(self, session_id)

    def fail_session(self, session_id: str, exc: TargetClosed) -> None:
        self._router.fail_session(session_id, exc)

    async def close(self) -> None:
        await self._ws.close()
        self._reader.cancel()
        try:
            await self._reader
        except asyncio.CancelledError:
            pass


class Session:
    """A flattened session on one target (``sessionId``), sharing its browser's socket."""

    def __init__(self, connection: Connection, session_id: str) -> None:
        self.connection = connection
        self.session_id = session_id

    async def send(
        self, method: str, params: dict[str, Any] | None = None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> dict[str, Any]:
        return await self.connection.send(method, params, session_id=self.session_id, timeout=timeout)

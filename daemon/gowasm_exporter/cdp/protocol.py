"""The CDP message router: command ids to futures, events to the caller. No I/O.

It is the whole protocol logic of the client, kept apart from the websocket so that it can be
tested with plain dicts (the shape python-websockets gives its ``protocol.py``). The adapter in
``connection.py`` feeds it every decoded message and sends what it prepares.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from .errors import ConnectionLost, ProtocolError, TargetClosed


@dataclass(frozen=True, slots=True)
class Event:
    """A protocol event; ``session_id`` is ``None`` for the browser's own session."""

    method: str
    params: dict[str, Any]
    session_id: str | None = None


@dataclass(slots=True)
class _Pending:
    method: str
    session_id: str | None
    future: asyncio.Future[dict[str, Any]] = field(repr=False)


class Router:
    """Matches answers to commands and hands events back to the caller.

    Futures are created on the running event loop; everything else is synchronous.
    """

    def __init__(self) -> None:
        self._next_id = 1
        self._pending: dict[int, _Pending] = {}
        self._closed: BaseException | None = None

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    def prepare(
        self, method: str, params: dict[str, Any] | None = None, session_id: str | None = None
    ) -> tuple[int, dict[str, Any], asyncio.Future[dict[str, Any]]]:
        """Build the message of a command and the future its answer resolves."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if self._closed is not None:
            future.set_exception(self._closed)
            future.exception()  # the caller sees it on await; don't log it as unretrieved
            return 0, {}, future
        command_id = self._next_id
        self._next_id += 1
        message: dict[str, Any] = {"id": command_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        self._pending[command_id] = _Pending(method, session_id, future)
        return command_id, message, future

    def forget(self, command_id: int) -> None:
        """Drop a command whose caller gave up (timeout, cancellation)."""
        self._pending.pop(command_id, None)

    def feed(self, message: Any) -> Event | None:
        """Take one decoded message; return it as an :class:`Event` if it is one.

        Answers resolve their command's future. Anything else that is not a well-formed event
        (a stray answer, a non-object) is ignored: the browser is trusted to speak CDP, but a
        late answer to a command that already timed out is normal.
        """
        if not isinstance(message, dict):
            return None
        command_id = message.get("id")
        if isinstance(command_id, int):
            pending = self._pending.pop(command_id, None)
            if pending is None or pending.future.done():
                return None
            if "error" in message:
                pending.future.set_exception(ProtocolError(pending.method, message["error"]))
            else:
                result = message.get("result")
                pending.future.set_result(result if isinstance(result, dict) else {})
            return None
        method = message.get("method")
        if not isinstance(method, str):
            return None
        params = message.get("params")
        session_id = message.get("sessionId")
        return Event(
            method, params if isinstance(params, dict) else {}, session_id if isinstance(session_id, str) else None
        )

    def fail_session(self, session_id: str, exc: TargetClosed) -> None:
        """Fail every call pending on a session that detached or crashed."""
        for command_id, pending in list(self._pending.items()):
            if pending.session_id == session_id:
                del self._pending[command_id]
                if not pending.future.done():
                    pending.future.set_exception(exc)

    def fail_all(self, exc: ConnectionLost) -> None:
        """Fail every pending call at once and refuse new ones: the socket is gone."""
        self._closed = exc
        pending, self._pending = self._pending, {}
        for p in pending.values():
            if not p.future.done():
                p.future.set_exception(exc)

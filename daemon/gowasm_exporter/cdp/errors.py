"""Errors raised by the CDP client.

Every failure of a DevTools Protocol call is a :class:`CDPError`, so callers can catch one root and
still tell the cases apart::

    CDPError
    ├── ProtocolError       the browser answered the command with an error object
    ├── CommandTimeout      no answer within the command's timeout
    ├── TargetClosed        the session detached (tab closed, navigated away, worker gone)
    │   └── TargetCrashed   ... because its renderer crashed
    └── ConnectionLost      the websocket to the browser closed; every pending call fails with it

Pending calls fail *at once* with the precise error when their session or the socket goes away,
instead of hanging until a timeout (the hang puppeteer/puppeteer#5331 reports).
"""

from __future__ import annotations

from typing import Any


class CDPError(Exception):
    """Root of every error of the CDP client."""


class ProtocolError(CDPError):
    """The browser rejected a command (its ``error`` member)."""

    def __init__(self, method: str, error: Any) -> None:
        self.method = method
        self.code = error.get("code") if isinstance(error, dict) else None
        self.error_message = str(error.get("message", error)) if isinstance(error, dict) else str(error)
        super().__init__(f"{method}: {self.error_message}")


class CommandTimeout(CDPError):
    """A command got no answer in time (a target that never answers)."""

    def __init__(self, method: str, timeout: float) -> None:
        self.method = method
        self.timeout = timeout
        super().__init__(f"{method}: no answer within {timeout:g} s")


class TargetClosed(CDPError):
    """The session a command was sent on detached before the answer came."""


class TargetCrashed(TargetClosed):
    """The session's renderer crashed."""


class ConnectionLost(CDPError):
    """The websocket to the browser closed or failed."""

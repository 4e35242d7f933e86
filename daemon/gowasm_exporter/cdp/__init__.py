"""A small Chrome DevTools Protocol client: a pure message router and a websocket adapter."""

from .connection import Connection, Session
from .errors import CDPError, CommandTimeout, ConnectionLost, ProtocolError, TargetClosed, TargetCrashed
from .protocol import Event, Router

__all__ = [
    "CDPError",
    "CommandTimeout",
    "Connection",
    "ConnectionLost",
    "Event",
    "ProtocolError",
    "Router",
    "Session",
    "TargetClosed",
    "TargetCrashed",
]

"""The navigation gate: a page's document request waits until the page is instrumented.

Chromium reports a tab created by another client as "waiting for debugger", but the tab's first
navigation does not wait: it commits in a new renderer process, often before the daemon has
registered its new-document script, and then the app's scripts run unobserved (seen on Chromium
156 in about 1 of 30 tabs, more when the daemon is busy). So the daemon intercepts document
requests at the browser level (``Fetch.enable`` with a ``Document`` pattern on the browser
session) and continues each one at once, except the request of a page whose setup is still
running, which is continued when the setup is done (or after ``HOLD_MAX`` seconds at most, so a
stuck daemon never blocks a page for long). When the daemon's connection closes, Chromium drops
the interception and continues whatever was held.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from .cdp import CDPError, Connection

log = logging.getLogger(__name__)

HOLD_MAX = 3.0
DOCUMENT_PATTERNS = [{"resourceType": "Document", "requestStage": "Request"}]


class NavigationGate:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.enabled = False
        self._ready: dict[str, asyncio.Event] = {}  # page target id -> set once it is instrumented
        self._pages: set[str] = set()  # every page target id the browser announced
        self.held = 0  # requests that had to wait

    async def enable(self) -> None:
        try:
            await self.connection.send("Fetch.enable", {"patterns": DOCUMENT_PATTERNS})
            self.enabled = True
        except CDPError as exc:
            log.warning(
                "document requests cannot be held (%s): a tab opened by another client may run "
                "its first scripts before the shim",
                exc,
            )

    def page_announced(self, target_id: str) -> None:
        self._pages.add(target_id)

    def page_gone(self, target_id: str) -> None:
        self._pages.discard(target_id)
        event = self._ready.pop(target_id, None)
        if event is not None:
            event.set()

    def setup_started(self, target_id: str) -> None:
        self._pages.add(target_id)
        self._event(target_id).clear()

    def setup_done(self, target_id: str) -> None:
        self._event(target_id).set()

    def _event(self, target_id: str) -> asyncio.Event:
        event = self._ready.get(target_id)
        if event is None:
            event = self._ready[target_id] = asyncio.Event()
        return event

    async def request_paused(self, params: dict[str, Any]) -> None:
        """Continue a paused document request, after its page's setup if that is still running."""
        request_id = params.get("requestId")
        frame_id = params.get("frameId")
        if not isinstance(request_id, str):
            return
        # A page's main frame id is its target id; other frames (iframes) are never held.
        if isinstance(frame_id, str) and frame_id in self._pages:
            event = self._event(frame_id)
            if not event.is_set():
                self.held += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), HOLD_MAX)
        with contextlib.suppress(CDPError):
            await self.connection.send("Fetch.continueRequest", {"requestId": request_id})

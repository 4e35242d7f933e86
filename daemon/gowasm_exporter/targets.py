"""Target discovery and attachment for one browser connection: the only speaker of ``Target.*``.

``Target.setAutoAttach({autoAttach, waitForDebuggerOnStart, flatten})`` on the browser session
attaches every page, the ones already open (not paused: instrumented late) and every one opened
later by anyone (paused before its first script: instrumented early). Each attachment gets a
:class:`~gowasm_exporter.instrument.PageInstrumentation` and a task that sets it up and polls it.
Targets that are not pages are resumed and let go.

The ``--include``/``--exclude`` filters choose which pages are *reported*: every page gets the
(inert without Go) shim, so a tab that navigates into a watched URL is already instrumented.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .cdp import CDPError, Connection, ConnectionLost, Event, TargetClosed, TargetCrashed
from .gate import NavigationGate
from .instrument import InstrumentConfig, PageInstrumentation
from .state import ExporterState

log = logging.getLogger(__name__)

REOPEN_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


# Browser-internal documents (the blank first tab, settings, DevTools) are never reported.
INTERNAL_SCHEMES = ("about:", "chrome:", "chrome-untrusted:", "chrome-extension:", "devtools:")


@dataclass(frozen=True, slots=True)
class UrlFilter:
    include: tuple[re.Pattern[str], ...] = ()
    exclude: tuple[re.Pattern[str], ...] = ()

    def __call__(self, url: str) -> bool:
        if url.startswith(INTERNAL_SCHEMES):
            return False
        if self.include and not any(p.search(url) for p in self.include):
            return False
        return not any(p.search(url) for p in self.exclude)


@dataclass(slots=True)
class _Attachment:
    session_id: str
    target_id: str
    url: str
    instrumentation: PageInstrumentation
    watched: bool = False  # by the URL filters (the state keeps the same flag)
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class TargetManager:
    def __init__(
        self,
        connection: Connection,
        *,
        browser: str,
        state: ExporterState,
        config: InstrumentConfig,
        url_filter: UrlFilter,
        keep_open: tuple[str, ...] = (),
    ) -> None:
        self.connection = connection
        self.browser = browser
        self.state = state
        self.config = config
        self.url_filter = url_filter
        self.keep_open = keep_open
        self._by_session: dict[str, _Attachment] = {}
        self._by_target: dict[str, _Attachment] = {}
        self._opened: dict[str, str] = {}  # target id of a kept-open page -> its URL
        self._tasks: set[asyncio.Task[Any]] = set()
        self.gate = NavigationGate(connection)

    async def start(self) -> None:
        await self.gate.enable()
        await self.connection.send("Target.setDiscoverTargets", {"discover": True})
        await self.connection.send(
            "Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True}
        )
        for url in self.keep_open:
            await self._open(url)

    def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for attachment in self._by_session.values():
            if attachment.task is not None:
                attachment.task.cancel()

    # -- events, from the connection's reader: synchronous, spawn tasks for anything that waits --

    def on_event(self, event: Event) -> None:
        if event.session_id is not None:
            attachment = self._by_session.get(event.session_id)
            if attachment is not None:
                attachment.instrumentation.on_event(event)
            return
        handler = self._handlers.get(event.method)
        if handler is not None:
            handler(self, event.params)

    def _attached(self, params: dict[str, Any]) -> None:
        session_id = params.get("sessionId")
        info = params.get("targetInfo") or {}
        waiting = bool(params.get("waitingForDebugger"))
        target_id = info.get("targetId")
        if not isinstance(session_id, str) or not isinstance(target_id, str):
            return
        if info.get("type") != "page":
            # Not ours to watch (browser UI, service workers...): resume it and let go.
            self._spawn(self._release(session_id, waiting))
            return
        url = str(info.get("url", ""))
        log.debug("target %s attached (%s, waiting=%s)", target_id, url, waiting)
        instrumentation = PageInstrumentation(
            self.connection.session(session_id),
            browser=self.browser,
            target_id=target_id,
            state=self.state,
            config=self.config,
        )
        attachment = _Attachment(session_id, target_id, url, instrumentation)
        self._by_session[session_id] = attachment
        self._by_target[target_id] = attachment
        self.gate.setup_started(target_id)
        self._set_watched(attachment, early=waiting)
        attachment.task = asyncio.create_task(self._run_attachment(attachment, waiting), name=f"target-{target_id[:8]}")

    def _detached(self, params: dict[str, Any]) -> None:
        session_id = params.get("sessionId")
        if not isinstance(session_id, str):
            return
        attachment = self._by_session.pop(session_id, None)
        if attachment is None:
            return  # detachedFromTarget can come more than once per session
        self._by_target.pop(attachment.target_id, None)
        self.connection.fail_session(session_id, TargetClosed(f"target {attachment.target_id} detached"))
        if attachment.task is not None:
            attachment.task.cancel()
        self.state.remove_target(self.browser, attachment.target_id)

    def _created(self, params: dict[str, Any]) -> None:
        info = params.get("targetInfo") or {}
        if info.get("type") == "page" and isinstance(info.get("targetId"), str):
            self.gate.page_announced(info["targetId"])

    def _request_paused(self, params: dict[str, Any]) -> None:
        self._spawn(self.gate.request_paused(params))

    def _info_changed(self, params: dict[str, Any]) -> None:
        info = params.get("targetInfo") or {}
        attachment = self._by_target.get(info.get("targetId"))  # type: ignore[arg-type]
        if attachment is None:
            return
        attachment.url = str(info.get("url", ""))
        self._set_watched(attachment, early=False)

    def _crashed(self, params: dict[str, Any]) -> None:
        attachment = self._by_target.get(params.get("targetId"))  # type: ignore[arg-type]
        if attachment is not None:
            self.state.target_crashed(self.browser, attachment.target_id)
            self.connection.fail_session(attachment.session_id, TargetCrashed(f"target {attachment.target_id} crashed"))

    def _destroyed(self, params: dict[str, Any]) -> None:
        target_id = params.get("targetId")
        if isinstance(target_id, str):
            self.gate.page_gone(target_id)
        url = self._opened.pop(target_id, None) if isinstance(target_id, str) else None
        if url is not None:
            self._spawn(self._reopen(url))

    _handlers: dict[str, Callable[[TargetManager, dict[str, Any]], None]] = {
        "Target.targetCreated": _created,
        "Fetch.requestPaused": _request_paused,
        "Target.attachedToTarget": _attached,
        "Target.detachedFromTarget": _detached,
        "Target.targetInfoChanged": _info_changed,
        "Target.targetCrashed": _crashed,
        "Target.targetDestroyed": _destroyed,
    }

    # -- tasks -------------------------------------------------------------------------------------

    def _set_watched(self, attachment: _Attachment, *, early: bool) -> None:
        """Report the page or stop reporting it, by the URL filters."""
        watched = self.url_filter(attachment.url)
        if self.state.target(self.browser, attachment.target_id) is None:
            self.state.add_target(
                self.browser, attachment.target_id, "page", attachment.url, early=early, watched=watched
            )
        else:
            self.state.set_target_url(self.browser, attachment.target_id, attachment.url, watched=watched)
        attachment.watched = watched

    async def _run_attachment(self, attachment: _Attachment, waiting: bool) -> None:
        instrumentation = attachment.instrumentation
        try:
            await instrumentation.setup(waiting=waiting)
        except TargetClosed:
            return  # detached or crashed: _detached cleans up
        except CDPError as exc:
            log.warning("target %s: setup failed: %s", attachment.target_id, exc)
            return
        finally:
            self.gate.setup_done(attachment.target_id)
        if instrumentation.adopted:
            log.info("target %s: found %d running Go instance(s)", attachment.target_id, instrumentation.adopted)
        while True:
            # Filtered-out pages are polled too (their snapshots only tell when a document that
            # ran Go is replaced); the state counts nothing from them.
            try:
                await instrumentation.poll_once()
            except (TargetClosed, ConnectionLost):
                return
            except CDPError as exc:
                # Normal during navigations ("Cannot find default execution context"); the
                # next poll reads the new document.
                log.debug("target %s: poll failed: %s", attachment.target_id, exc)
            await asyncio.sleep(self.config.poll_interval)

    async def _release(self, session_id: str, waiting: bool) -> None:
        try:
            if waiting:
                await self.connection.send("Runtime.runIfWaitingForDebugger", session_id=session_id)
            await self.connection.send("Target.detachFromTarget", {"sessionId": session_id})
        except CDPError:
            pass

    async def _open(self, url: str) -> None:
        answer = await self.connection.send("Target.createTarget", {"url": url})
        target_id = answer.get("targetId")
        if isinstance(target_id, str):
            self._opened[target_id] = url
            log.info("opened %s", url)

    async def _reopen(self, url: str) -> None:
        """A kept-open page was closed or crashed: open it again, backing off on failures."""
        for delay in REOPEN_DELAYS:
            await asyncio.sleep(delay)
            try:
                await self._open(url)
                return
            except CDPError as exc:
                log.warning("reopening %s failed: %s", url, exc)
        log.error("giving up reopening %s", url)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

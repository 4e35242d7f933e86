"""What one attached page gets: the binding, the shim, polling, and shim events into state.

Setup order matters for pages created after the daemon connected: they arrive paused
(``waitForDebuggerOnStart``), get the binding and the shim as a new-document script, and only
then run, so the shim is in place before the page's first script. A page that was already
running gets the same script (``runImmediately`` evaluates it in the live document) and its Go
instances are found with ``Runtime.queryObjects`` on ``Go.prototype``, idle or not.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .cdp import CDPError, Event, ProtocolError, Session
from .schema import PayloadError, parse_event, parse_snapshot
from .shim import ADOPT_FUNCTION, GO_PROTOTYPE_EXPRESSION, REBIND_EXPRESSION, SNAPSHOT_EXPRESSION, shim_source
from .state import ExporterState, PageMetrics

log = logging.getLogger(__name__)

OBJECT_GROUP = "gowasm-exporter"

# Performance.getMetrics names -> PageMetrics fields.
PERFORMANCE_METRICS = {
    "JSHeapUsedSize": "js_heap_used_bytes",
    "JSHeapTotalSize": "js_heap_total_bytes",
    "Nodes": "dom_nodes",
    "JSEventListeners": "js_event_listeners",
}


@dataclass(frozen=True, slots=True)
class InstrumentConfig:
    binding: str
    poll_interval: float
    command_timeout: float
    max_stderr: int = 65536
    events_per_second: float = 200.0
    event_burst: int = 1000


class TokenBucket:
    """Rate cap on one page's events: a page that floods the binding loses its own excess."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


class PageInstrumentation:
    """Instruments one page target over its session and keeps its state current."""

    def __init__(
        self,
        session: Session,
        *,
        browser: str,
        target_id: str,
        state: ExporterState,
        config: InstrumentConfig,
    ) -> None:
        self.session = session
        self.browser = browser
        self.target_id = target_id
        self.state = state
        self.config = config
        self._bucket = TokenBucket(config.events_per_second, config.event_burst)
        self._shim = shim_source(binding=config.binding, max_stderr=config.max_stderr)
        self.adopted = 0
        # The main frame's default execution context (Runtime.executionContextCreated): the shim
        # also runs in same-process iframes, whose events name other documents and would make
        # the state retire the page's own. None until known: events are then taken as before.
        self._main_context: int | None = None

    async def setup(self, *, waiting: bool) -> None:
        """Install shim and binding, then resume the page (if paused) or adopt its instances.

        The commands are pipelined (CDP runs a session's commands in order), so a page that
        some other client navigates right after creating it has the least time to race them.
        Order matters, as seen on Chromium 156: the new-document script reaches later documents
        (reloads, navigations) only with the Page domain enabled, and enabling it *before* adding
        the script made the paused target's first document run its scripts before ours. The
        binding reaches later documents only with the Runtime domain enabled.
        """
        send = self._send
        try:
            await asyncio.gather(
                send("Page.addScriptToEvaluateOnNewDocument", {"source": self._shim, "runImmediately": True}),
                send("Runtime.addBinding", {"name": self.config.binding}),
                send("Page.enable"),
                # Without the Runtime domain the binding is not installed in later documents.
                send("Runtime.enable"),
                send("Performance.enable", {"timeDomain": "timeTicks"}),
            )
            if waiting:
                # The navigation of a new tab can commit before the script above is registered,
                # and then `runImmediately` may find no context to run in: evaluate the shim into
                # the current document ourselves while it is still paused (idempotent).
                await send("Runtime.evaluate", {"expression": self._shim, "silent": True})
        finally:
            if waiting:
                # Always resume a paused target, even when its setup failed: left paused, it is frozen.
                await send("Runtime.runIfWaitingForDebugger")
        if not waiting:
            self.adopted = await self.adopt_running_instances()
            # A shim already in the page (the daemon reconnected) still holds the binding of
            # the previous session: make it take the one just added, and flush what it held.
            await send("Runtime.evaluate", {"expression": REBIND_EXPRESSION, "silent": True})

    async def inject_now(self) -> None:
        """Evaluate the shim in the current document and adopt what runs there.

        For a document that started before the new-document script was registered (a page
        navigated by another client while we were still setting up); harmless if the shim is
        already there.
        """
        await self._send("Runtime.evaluate", {"expression": self._shim, "silent": True})
        self.adopted += await self.adopt_running_instances()

    async def adopt_running_instances(self) -> int:
        """Hand every live ``Go`` object of the page to the shim, including idle programs."""
        try:
            proto = await self._send(
                "Runtime.evaluate", {"expression": GO_PROTOTYPE_EXPRESSION, "objectGroup": OBJECT_GROUP}
            )
            object_id = proto.get("result", {}).get("objectId")
            if not object_id:
                return 0
            found = await self._send(
                "Runtime.queryObjects", {"prototypeObjectId": object_id, "objectGroup": OBJECT_GROUP}
            )
            array_id = found.get("objects", {}).get("objectId")
            if not array_id:
                return 0
            adopted = await self._send(
                "Runtime.callFunctionOn",
                {"functionDeclaration": ADOPT_FUNCTION, "objectId": array_id, "returnByValue": True},
            )
            value = adopted.get("result", {}).get("value")
            return value if isinstance(value, int) and not isinstance(value, bool) else 0
        finally:
            try:
                await self._send("Runtime.releaseObjectGroup", {"objectGroup": OBJECT_GROUP})
            except CDPError:
                pass

    async def poll_forever(self) -> None:
        while True:
            await self.poll_once()
            await asyncio.sleep(self.config.poll_interval)

    async def poll_once(self) -> None:
        """Read the shim's snapshot and the page's performance metrics into state."""
        result = await self._send(
            "Runtime.evaluate", {"expression": SNAPSHOT_EXPRESSION, "returnByValue": True, "silent": True}
        )
        if "exceptionDetails" in result:
            self.state.reject("snapshot_exception")
        else:
            value = result.get("result", {}).get("value")
            if value is None:
                await self.inject_now()  # a document that started without the shim
            else:
                try:
                    snapshot = parse_snapshot(_snapshot_json(value))
                except PayloadError as exc:
                    self.state.reject("snapshot_invalid")
                    log.debug("target %s: invalid snapshot: %s", self.target_id, exc)
                else:
                    self.state.apply_snapshot(self.browser, self.target_id, snapshot)
                    if not snapshot.bound:
                        await self._rebind()
        metrics = await self._send("Performance.getMetrics")
        self.state.set_page_metrics(self.browser, self.target_id, _page_metrics(metrics))

    async def _rebind(self) -> None:
        """The document started without the binding (it won a race with setup): add it now.

        The shim then sends the events it held back (REBIND_EXPRESSION flushes them).
        """
        try:
            await self._send("Runtime.addBinding", {"name": self.config.binding})
        except ProtocolError:
            pass  # already there after all
        await self._send("Runtime.evaluate", {"expression": REBIND_EXPRESSION, "silent": True})

    def on_event(self, event: Event) -> None:
        """Session events, called from the connection's reader: synchronous and cheap only."""
        if event.method == "Runtime.bindingCalled" and event.params.get("name") == self.config.binding:
            context = event.params.get("executionContextId")
            if self._main_context is not None and context != self._main_context:
                self.state.reject("other_frame")  # an iframe's shim: its documents are not the page's
                return
            self._on_binding(event.params.get("payload"))
        elif event.method == "Runtime.executionContextCreated":
            context = event.params.get("context")
            aux = context.get("auxData") if isinstance(context, dict) else None
            if isinstance(aux, dict) and aux.get("isDefault") is True and aux.get("frameId") == self.target_id:
                context_id = context.get("id")  # type: ignore[union-attr]
                self._main_context = context_id if isinstance(context_id, int) else None

    def _on_binding(self, payload: Any) -> None:
        if not self._bucket.take():
            self.state.reject("rate_limited")
            return
        try:
            shim_event = parse_event(payload)
        except PayloadError as exc:
            self.state.reject("invalid")
            log.debug("target %s: rejected event: %s", self.target_id, exc)
            return
        self.state.apply_event(self.browser, self.target_id, shim_event)

    async def _send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.session.send(method, params, timeout=self.config.command_timeout)


def _snapshot_json(value: Any) -> Any:
    """The snapshot in SNAPSHOT_EXPRESSION's answer: a bounded JSON string (decoded here), or
    the object itself when the page's JSON.stringify is broken."""
    if value is False:
        raise PayloadError("the snapshot is over the size cap")
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError as exc:
        raise PayloadError(f"the snapshot is not JSON: {exc}") from None


def _page_metrics(answer: dict[str, Any]) -> PageMetrics:
    metrics = PageMetrics()
    for item in answer.get("metrics", ()):
        if not isinstance(item, dict):
            continue
        field = PERFORMANCE_METRICS.get(item.get("name"))  # type: ignore[arg-type]
        value = item.get("value")
        if field is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
            setattr(metrics, field, float(value))
    return metrics

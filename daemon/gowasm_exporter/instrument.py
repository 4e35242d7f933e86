"""What one attached target gets: the binding, the shim, polling, and shim events into state.

Three kinds of targets run Go: pages, out-of-process iframes (another site's document in its own
renderer: a target of its own, attached through its parent's session) and dedicated workers.
Setup order matters for targets created after the daemon connected: they arrive paused
(``waitForDebuggerOnStart``), get the binding and the shim (a new-document script for pages and
iframes; a plain evaluation for workers, which have no such API), and only then run, so the shim
is in place before their first script. A target that was already running gets the same script
(``runImmediately`` evaluates it in the live document) and its Go instances are found with
``Runtime.queryObjects`` on ``Go.prototype``, idle or not.

Same-process iframes (a same-site iframe shares its page's renderer and CDP session) get the shim
from the page's new-document script, which runs in every frame. Each one's default execution
context is polled on its own (``contextId``), its binding calls are told apart by
``executionContextId``, and its Go instances are reported as a target of their own (type
``iframe``, id = the frame id), so that they never mix with the page's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .cdp import CDPError, Event, ProtocolError, Session
from .pacing import ScrapePacer
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
    timing_sample: int = 16  # the shim's CONFIG.timingSample
    # Push mode: the shim sends its snapshot poll_interval after a change, and the daemon polls
    # only every push_poll_interval (page metrics, documents that stopped talking). None: off.
    push_poll_interval: float | None = None
    # --poll-on-scrape: each target is polled once per scrape period, just before the next scrape.
    pacer: ScrapePacer | None = None
    events_per_second: float = 200.0
    event_burst: int = 1000

    @property
    def full_poll_interval(self) -> float:
        """How often each target is polled, without a pacer."""
        return self.poll_interval if self.push_poll_interval is None else self.push_poll_interval

    def poll_delay(self) -> float:
        """Seconds until a target's next poll."""
        interval = self.full_poll_interval
        return interval if self.pacer is None else self.pacer.delay(interval)


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


# Bound on the same-process iframes of one target followed at once (each is polled on its own).
MAX_CHILD_FRAMES = 32


@dataclass(slots=True)
class _ChildFrame:
    """A same-process iframe's current document, known by its default execution context."""

    frame_id: str
    context_id: int
    reported: bool = False  # its target is in the state (it ran Go, or said something)


class TargetInstrumentation:
    """Instruments one page, out-of-process iframe or worker over its session, and keeps its
    state (and that of its same-process iframes) current."""

    def __init__(
        self,
        session: Session,
        *,
        browser: str,
        target_id: str,
        state: ExporterState,
        config: InstrumentConfig,
        kind: str = "page",
        watch: Callable[[str], bool] = lambda url: True,
    ) -> None:
        self.session = session
        self.browser = browser
        self.target_id = target_id
        self.state = state
        self.config = config
        self.kind = kind  # "page", "iframe" or "worker"
        self.watch = watch  # the URL filters, for same-process iframes' documents
        self._bucket = TokenBucket(config.events_per_second, config.event_burst)
        self._shim = shim_source(
            binding=config.binding,
            max_stderr=config.max_stderr,
            timing_sample=config.timing_sample,
            push_ms=0 if config.push_poll_interval is None else max(1, round(config.poll_interval * 1000)),
        )
        self.adopted = 0
        # The target's own default execution context (Runtime.executionContextCreated): the shim
        # also runs in same-process iframes, whose contexts are told apart. None until known (and
        # always for a worker): events are then taken as the target's own.
        self._main_context: int | None = None
        self._frames: dict[int, _ChildFrame] = {}  # same-process iframes, by default context id
        self._frame_urls: dict[str, str] = {}  # their URLs (Page.frameNavigated), by frame id
        self.early = True  # set up before its first script (False: found running)

    @property
    def has_page_domain(self) -> bool:
        return self.kind != "worker"

    async def setup(self, *, waiting: bool) -> None:
        """Install shim and binding, then resume the target (if paused) or adopt its instances.

        The commands are pipelined (CDP runs a session's commands in order), so a page that
        some other client navigates right after creating it has the least time to race them.
        Order matters, as seen on Chromium 156: the new-document script reaches later documents
        (reloads, navigations) only with the Page domain enabled, and enabling it *before* adding
        the script made the paused target's first document run its scripts before ours. The
        binding reaches later documents only with the Runtime domain enabled. Auto-attach on the
        target's own session brings its out-of-process iframes and workers, paused in turn.
        """
        self.early = waiting
        send = self._send
        auto_attach = {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True}
        try:
            if self.has_page_domain:
                commands = [
                    send("Page.addScriptToEvaluateOnNewDocument", {"source": self._shim, "runImmediately": True}),
                    send("Runtime.addBinding", {"name": self.config.binding}),
                    send("Page.enable"),
                    # Without the Runtime domain the binding is not installed in later documents.
                    send("Runtime.enable"),
                    send("Target.setAutoAttach", auto_attach),
                ]
                if self.kind == "page":
                    commands.append(send("Performance.enable", {"timeDomain": "timeTicks"}))
                await asyncio.gather(*commands)
            else:
                await asyncio.gather(
                    send("Runtime.addBinding", {"name": self.config.binding}),
                    send("Runtime.enable"),
                )
                # A worker's nested workers: not every Chromium attaches them; nothing depends on it.
                with contextlib.suppress(ProtocolError):
                    await send("Target.setAutoAttach", auto_attach)
            if self.kind == "worker" or (waiting and self.kind == "page"):
                # A worker has no new-document script: the shim is evaluated in its global scope
                # while it is still paused, before its first script. For a page, the navigation of
                # a new tab can commit before the script above is registered, and then
                # `runImmediately` may find no context to run in: evaluate the shim into the
                # current document ourselves while it is still paused (idempotent). Not for a
                # paused iframe: it has no document yet, and the evaluation would wait for one
                # that cannot come before it is resumed (seen on Chromium 156); its document runs
                # the new-document script first.
                await send("Runtime.evaluate", {"expression": self._shim, "silent": True})
        finally:
            if waiting:
                # Always resume a paused target, even when its setup failed: left paused, it is frozen.
                await send("Runtime.runIfWaitingForDebugger")
        if not waiting:
            if self.has_page_domain:
                # Frames navigated before the Page domain was enabled are not announced again.
                self._learn_frames((await send("Page.getFrameTree")).get("frameTree"))
            # The document, then its same-process iframes (their contexts were announced by
            # Runtime.enable, and `runImmediately` put the shim in them).
            self.adopted = await self._take_over(None)
            for context_id in list(self._frames):
                with contextlib.suppress(ProtocolError):  # the iframe went away meanwhile
                    self.adopted += await self._take_over(context_id)

    async def _take_over(self, context_id: int | None) -> int:
        """In a document that was running before this attach: find its Go programs, and make a
        shim already there (the daemon reconnected) take the binding just added, flush what it
        held and send its exits again (REBIND_EXPRESSION). Returns the programs found."""
        adopted = await self.adopt_running_instances(context_id)
        await self._send("Runtime.evaluate", _in_context({"expression": REBIND_EXPRESSION, "silent": True}, context_id))
        return adopted

    async def inject_now(self, context_id: int | None = None) -> None:
        """Evaluate the shim in the current document and adopt what runs there.

        For a document that started before the new-document script was registered (a page
        navigated by another client while we were still setting up); harmless if the shim is
        already there.
        """
        await self._send("Runtime.evaluate", _in_context({"expression": self._shim, "silent": True}, context_id))
        self.adopted += await self.adopt_running_instances(context_id)

    async def adopt_running_instances(self, context_id: int | None = None) -> int:
        """Hand every live ``Go`` object of the document to the shim, including idle programs."""
        try:
            proto = await self._send(
                "Runtime.evaluate",
                _in_context({"expression": GO_PROTOTYPE_EXPRESSION, "objectGroup": OBJECT_GROUP}, context_id),
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

    async def poll_once(self) -> None:
        """Read the shim's snapshots (the target's, then each same-process iframe's) and the
        page's performance metrics into state."""
        await self._poll_context(None, self.target_id)
        for frame in list(self._frames.values()):
            try:
                await self._poll_context(frame.context_id, frame.frame_id, frame)
            except ProtocolError as exc:
                # The frame went away between the list and the call ("Cannot find context").
                log.debug("target %s: frame %s: poll failed: %s", self.target_id, frame.frame_id, exc)
        if self.kind == "page":
            metrics = await self._send("Performance.getMetrics")
            self.state.set_page_metrics(self.browser, self.target_id, _page_metrics(metrics))

    async def _poll_context(self, context_id: int | None, target_id: str, frame: _ChildFrame | None = None) -> None:
        result = await self._send(
            "Runtime.evaluate",
            _in_context({"expression": SNAPSHOT_EXPRESSION, "returnByValue": True, "silent": True}, context_id),
        )
        if "exceptionDetails" in result:
            self.state.reject("snapshot_exception")
            return
        value = result.get("result", {}).get("value")
        if value is None:
            await self.inject_now(context_id)  # a document that started without the shim
            return
        try:
            snapshot = parse_snapshot(_snapshot_json(value))
        except PayloadError as exc:
            self.state.reject("snapshot_invalid")
            log.debug("target %s: invalid snapshot: %s", target_id, exc)
            return
        if frame is not None:
            if not snapshot.instances and not frame.reported:
                return  # an iframe without Go: not worth a target of its own
            self._report_frame(frame)
        self.state.apply_snapshot(self.browser, target_id, snapshot)
        if not snapshot.bound:
            await self._rebind(context_id)

    async def _rebind(self, context_id: int | None = None) -> None:
        """The document started without the binding (it won a race with setup): add it now.

        The shim then sends the events it held back (REBIND_EXPRESSION flushes them).
        """
        try:
            await self._send("Runtime.addBinding", {"name": self.config.binding})
        except ProtocolError:
            pass  # already there after all
        await self._send("Runtime.evaluate", _in_context({"expression": REBIND_EXPRESSION, "silent": True}, context_id))

    # -- same-process iframes ----------------------------------------------------------------------

    def _report_frame(self, frame: _ChildFrame) -> None:
        """Give a same-process iframe's document a target of its own in the state (once)."""
        if frame.reported:
            return
        frame.reported = True
        url = self._frame_urls.get(frame.frame_id, "")
        self.state.add_target(
            self.browser,
            frame.frame_id,
            "iframe",
            url,
            early=self.early,
            watched=self.watch(url),
            parent=self.target_id,
        )

    def _frame_gone(self, context_id: int) -> None:
        """A same-process iframe's document is gone (navigated, removed, or the page navigated):
        Go still running in it ended with it."""
        frame = self._frames.pop(context_id, None)
        if frame is not None and frame.reported:
            self.state.remove_target(self.browser, frame.frame_id)

    def forget_frames(self) -> None:
        """The target itself is gone: so are its same-process iframes."""
        for context_id in list(self._frames):
            self._frame_gone(context_id)

    def frame_target_ids(self) -> list[str]:
        return [frame.frame_id for frame in self._frames.values() if frame.reported]

    # -- events ------------------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """Session events, called from the connection's reader: synchronous and cheap only."""
        method, params = event.method, event.params
        if method == "Runtime.bindingCalled" and params.get("name") == self.config.binding:
            context = params.get("executionContextId")
            frame = self._frames.get(context)  # type: ignore[arg-type]
            if frame is not None:
                self._report_frame(frame)
                self._on_binding(params.get("payload"), frame.frame_id)
            elif self._main_context is None or context == self._main_context:
                self._on_binding(params.get("payload"), self.target_id)
            else:
                self.state.reject("other_frame")  # a context we never saw created (an isolated world)
        elif method == "Runtime.executionContextCreated":
            self._context_created(params.get("context"))
        elif method == "Runtime.executionContextDestroyed":
            context_id = params.get("executionContextId")
            if isinstance(context_id, int):
                self._frame_gone(context_id)
        elif method == "Runtime.executionContextsCleared":
            self.forget_frames()  # the target's own document was replaced, and its iframes with it
        elif method == "Page.frameNavigated":
            self._frame_navigated(params.get("frame"))
        elif method == "Page.frameDetached":
            frame_id = params.get("frameId")
            self._frame_urls.pop(frame_id, None)  # type: ignore[arg-type]

    def _learn_frames(self, tree: Any, depth: int = 0) -> None:
        """The URLs of the child frames in a ``Page.getFrameTree`` answer."""
        if not isinstance(tree, dict) or depth > 8:
            return
        frame = tree.get("frame")
        if depth > 0 and isinstance(frame, dict):
            self._frame_navigated(frame)
        children = tree.get("childFrames")
        for child in children if isinstance(children, list) else ():
            self._learn_frames(child, depth + 1)

    def _frame_navigated(self, frame: Any) -> None:
        if not isinstance(frame, dict) or not isinstance(frame.get("id"), str) or not frame.get("parentId"):
            return
        frame_id, url = frame["id"], str(frame.get("url", ""))
        if frame_id in self._frame_urls or len(self._frame_urls) < MAX_CHILD_FRAMES:
            self._frame_urls[frame_id] = url
        if frame_id in self.frame_target_ids():
            self.state.set_target_url(self.browser, frame_id, url, watched=self.watch(url))

    def _context_created(self, context: Any) -> None:
        aux = context.get("auxData") if isinstance(context, dict) else None
        context_id = context.get("id") if isinstance(context, dict) else None
        if not isinstance(aux, dict) or aux.get("isDefault") is not True or not isinstance(context_id, int):
            return
        frame_id = aux.get("frameId")
        if frame_id == self.target_id:
            self._main_context = context_id
        elif isinstance(frame_id, str) and frame_id and len(self._frames) < MAX_CHILD_FRAMES:
            # A new document in a same-process iframe: the previous one of that frame is gone
            # (its context's destruction may come later, or not at all in some orders).
            for old in [c for c, f in self._frames.items() if f.frame_id == frame_id]:
                self._frame_gone(old)
            self._frames[context_id] = _ChildFrame(frame_id, context_id)

    def _on_binding(self, payload: Any, target_id: str) -> None:
        if not self._bucket.take():
            self.state.reject("rate_limited")
            return
        try:
            shim_event = parse_event(payload)
        except PayloadError as exc:
            self.state.reject("invalid")
            log.debug("target %s: rejected event: %s", target_id, exc)
            return
        self.state.apply_event(self.browser, target_id, shim_event)

    async def _send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.session.send(method, params, timeout=self.config.command_timeout)


def _in_context(params: dict[str, Any], context_id: int | None) -> dict[str, Any]:
    """``params`` of a Runtime call, aimed at one execution context (None: the default one)."""
    if context_id is not None:
        params["contextId"] = context_id
    return params


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
    """The four metrics the exporter keeps, of the thirty or so ``Performance.getMetrics`` lists
    (one per poll of every page: the loop only looks at the names of the others)."""
    metrics = PageMetrics()
    items = answer.get("metrics")
    if not isinstance(items, list):
        return metrics
    for item in items:
        name = item.get("name") if isinstance(item, dict) else None
        if type(name) is str and name in PERFORMANCE_METRICS:
            value = item.get("value")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                setattr(metrics, PERFORMANCE_METRICS[name], float(value))
    return metrics

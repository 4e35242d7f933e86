"""Target discovery and attachment for one browser connection: the only speaker of ``Target.*``.

``Target.setAutoAttach({autoAttach, waitForDebuggerOnStart, flatten})`` on the browser session
attaches every page, the ones already open (not paused: instrumented late) and every one opened
later by anyone (paused before its first script: instrumented early). Each page's setup repeats
the call on the page's own session, which brings its out-of-process iframes and dedicated
workers the same way (their ``attachedToTarget`` arrives on the parent's session), and theirs in
turn. Each attachment gets a :class:`~gowasm_exporter.instrument.TargetInstrumentation` and a
task that sets it up and polls it. Other targets (service workers, browser UI) are resumed and
let go.

The ``--include``/``--exclude`` filters choose which pages are *reported*: every page gets the
(inert without Go) shim, so a tab that navigates into a watched URL is already instrumented.

Pages come and go under the daemon's feet, and each way is handled here:

- a tab closed (even in the middle of its setup): its session detaches, its pending commands fail
  at once, its task ends, its series go;
- a renderer crash (``Target.targetCrashed``): counted, the running instances end as ``crash``,
  the session stays attached (Chromium keeps the tab) and polling waits for
  ``Inspector.targetReloadedAfterCrash``, when the new document (with the shim and binding, which
  Chromium re-applies to the new renderer) is polled again;
- a page that never answers: every command has a timeout; a setup that timed out is retried
  from the poll loop until it went through once;
- the pages the monitor keeps open (``--open``) are opened again when closed, reloaded when their
  renderer crashed and, with ``--reload-after-exit``, reloaded some time after their Go program
  exited, with a backoff that grows while a page keeps failing soon after being restored.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .cdp import CDPError, Connection, ConnectionLost, Event, TargetClosed, TargetCrashed
from .gate import NavigationGate
from .health import ExporterHealth
from .instrument import InstrumentConfig, TargetInstrumentation
from .labels import page_label
from .pacing import PollTicker
from .state import ExporterState

log = logging.getLogger(__name__)

# Delays before restoring a kept-open page, by how many times in a row it failed again soon
# (within KEPT_STABLE_AFTER) after being restored: a page that crashes at every start is
# restored every 30 s, not in a tight loop. The same steps space out retries of a failed restore.
RESTORE_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
KEPT_STABLE_AFTER = 60.0


# What gets instrumented: pages, and the out-of-process iframes and dedicated workers they start.
WATCHED_TYPES = ("page", "iframe", "worker")

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
class KeptPage:
    """A page the monitor keeps open (``--open``). Owned by the browser's supervisor, so that it
    outlives connections: after a reconnect the same tab (same target id) is kept."""

    url: str
    target_id: str | None = None
    quick_restores: int = 0  # restores in a row that came soon after the previous one
    last_restored: float | None = None  # time.monotonic()
    exited_since: float | None = None  # when its Go program was first seen exited
    restoring: bool = False

    def restore_delay(self, reason: str) -> float:
        now = time.monotonic()
        if self.last_restored is not None and now - self.last_restored < KEPT_STABLE_AFTER:
            self.quick_restores += 1
        else:
            self.quick_restores = 0
        if reason == "after_exit" and self.quick_restores == 0:
            return 0.0  # --reload-after-exit already waited
        return RESTORE_DELAYS[min(self.quick_restores, len(RESTORE_DELAYS) - 1)]

    @property
    def page(self) -> str:
        return page_label(self.url)


@dataclass(slots=True)
class _Attachment:
    session_id: str
    target_id: str
    url: str
    instrumentation: TargetInstrumentation
    kind: str = "page"  # "page", "iframe" (out-of-process) or "worker"
    parent: _Attachment | None = None  # the page or iframe an iframe or worker belongs to
    watched: bool = False  # by the URL filters (the state keeps the same flag)
    set_up: bool = False  # its setup went through once
    crashed: bool = False  # its renderer crashed and the tab was not reloaded yet
    revived: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
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
        kept: Sequence[KeptPage] = (),
        health: ExporterHealth | None = None,
        reload_after_exit: float | None = None,
    ) -> None:
        self.connection = connection
        self.browser = browser
        self.state = state
        self.config = config
        self.url_filter = url_filter
        self.kept = kept
        self.health = health if health is not None else ExporterHealth()
        self.reload_after_exit = reload_after_exit
        self._by_session: dict[str, _Attachment] = {}
        self._by_target: dict[str, _Attachment] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.gate = NavigationGate(connection)
        self._ticker = PollTicker(config.poll_delay)

    async def start(self) -> None:
        await self.gate.enable()
        await self.connection.send("Target.setDiscoverTargets", {"discover": True})
        await self.connection.send(
            "Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True}
        )
        infos = (await self.connection.send("Target.getTargets")).get("targetInfos", [])
        alive = {i["targetId"] for i in infos if isinstance(i, dict) and isinstance(i.get("targetId"), str)}
        # Readings kept from the previous connection are for pages still there; the rest are gone.
        self.state.forget_detached(self.browser, alive)
        self.health.forget_targets(self.browser, alive)
        for kept in self.kept:
            if kept.target_id is None:
                await self._open(kept)  # the first connection
            elif kept.target_id not in alive:
                # Closed while the daemon was away, or the browser restarted: open it again.
                kept.target_id = None
                await self._open(kept)
                self.health.page_restores[(kept.page, "closed")] += 1

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
            if event.method in ("Target.attachedToTarget", "Target.detachedFromTarget"):
                # A page's (or iframe's) own iframes and workers, through its auto-attach.
                if attachment is not None and event.method == "Target.attachedToTarget":
                    self._attached(event.params, parent=attachment)
                elif event.method == "Target.detachedFromTarget":
                    self._detached(event.params)
                return
            if attachment is not None:
                if event.method == "Inspector.targetReloadedAfterCrash":
                    attachment.crashed = False
                    attachment.revived.set()
                attachment.instrumentation.on_event(event)
            return
        handler = self._handlers.get(event.method)
        if handler is not None:
            handler(self, event.params)

    def _attached(self, params: dict[str, Any], parent: _Attachment | None = None) -> None:
        session_id = params.get("sessionId")
        info = params.get("targetInfo") or {}
        waiting = bool(params.get("waitingForDebugger"))
        target_id = info.get("targetId")
        kind = info.get("type")
        if not isinstance(session_id, str) or not isinstance(target_id, str):
            return
        if session_id in self._by_session:
            return  # attached twice (the browser's and a page's auto-attach): one is enough
        if kind != ("page" if parent is None else kind) or kind not in WATCHED_TYPES:
            # Not ours to watch (browser UI, service workers, or a child target announced at the
            # browser level, which its page's session also brings): resume it and let go.
            self._spawn(self._release(session_id, waiting))
            return
        url = str(info.get("url", ""))
        log.debug("%s %s attached (%s, waiting=%s)", kind, target_id, url, waiting)
        instrumentation = TargetInstrumentation(
            self.connection.session(session_id),
            browser=self.browser,
            target_id=target_id,
            state=self.state,
            config=self.config,
            kind=kind,
            watch=self.url_filter,
        )
        attachment = _Attachment(session_id, target_id, url, instrumentation, kind, parent)
        self._by_session[session_id] = attachment
        self._by_target[target_id] = attachment
        if kind == "page":
            # An iframe needs no gate: its document request is made before its target exists,
            # and its paused renderer runs the new-document script before the document's own.
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
        if self._by_target.get(attachment.target_id) is attachment:
            self._by_target.pop(attachment.target_id)
        self.connection.fail_session(session_id, TargetClosed(f"target {attachment.target_id} detached"))
        if attachment.task is not None:
            attachment.task.cancel()
        # Its iframes and workers go with it (their own detach events may come later, or never).
        for child in [a for a in self._by_session.values() if a.parent is attachment]:
            self._detached({"sessionId": child.session_id})
        attachment.instrumentation.forget_frames()
        self.state.remove_target(self.browser, attachment.target_id)
        self.health.shim_drops_seen.pop((self.browser, attachment.target_id), None)

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
        target_id = params.get("targetId")
        if not isinstance(target_id, str):
            return
        self.health.renderer_crashes[self.browser] += 1
        attachment = self._by_target.get(target_id)
        if attachment is not None:
            log.warning("target %s: renderer crashed (%s)", target_id, attachment.url)
            attachment.crashed = True
            attachment.revived.clear()
            self.state.target_crashed(self.browser, attachment.target_id)
            self.connection.fail_session(attachment.session_id, TargetCrashed(f"target {attachment.target_id} crashed"))
        kept = self._kept(target_id)
        if kept is not None:
            self._spawn(self._restore(kept, "crash"))

    def _destroyed(self, params: dict[str, Any]) -> None:
        target_id = params.get("targetId")
        if not isinstance(target_id, str):
            return
        self.gate.page_gone(target_id)
        kept = self._kept(target_id)
        if kept is not None:
            kept.target_id = None
            self._spawn(self._restore(kept, "closed"))

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
                self.browser,
                attachment.target_id,
                attachment.kind,
                attachment.url,
                early=early,
                watched=watched,
                parent=None if attachment.parent is None else attachment.parent.target_id,
            )
        else:
            self.state.set_target_url(self.browser, attachment.target_id, attachment.url, watched=watched)
        attachment.watched = watched

    async def _run_attachment(self, attachment: _Attachment, waiting: bool) -> None:
        instrumentation = attachment.instrumentation
        try:
            await instrumentation.setup(waiting=waiting)
            attachment.set_up = True
        except TargetCrashed:
            pass  # polls resume once the tab is reloaded
        except (TargetClosed, ConnectionLost):
            return  # detached or disconnected: _detached or the supervisor cleans up
        except CDPError as exc:
            log.warning("target %s: setup failed, retrying from the poll loop: %s", attachment.target_id, exc)
        finally:
            # Never hold the page's document longer than the first attempt.
            self.gate.setup_done(attachment.target_id)
        if instrumentation.adopted:
            log.info("target %s: found %d running Go instance(s)", attachment.target_id, instrumentation.adopted)
        while True:
            if attachment.crashed:
                await attachment.revived.wait()
            started = time.monotonic()
            ok = False
            # Filtered-out pages are polled too (their snapshots only tell when a document that
            # ran Go is replaced); the state counts nothing from them.
            try:
                if not attachment.set_up:
                    await instrumentation.setup(waiting=False)
                    attachment.set_up = True
                await instrumentation.poll_once()
                ok = True
            except TargetCrashed:
                pass  # the loop waits for the tab to be reloaded
            except (TargetClosed, ConnectionLost):
                return
            except CDPError as exc:
                # Normal during navigations ("Cannot find default execution context"); the
                # next poll reads the new document. A timeout is a page that does not answer.
                log.debug("target %s: poll failed: %s", attachment.target_id, exc)
            except Exception:
                # A bug must cost one poll of one page, not the page's monitoring.
                log.exception("target %s: poll failed", attachment.target_id)
            self.health.refreshed(self.browser, "poll", started, ok)
            self._count_shim_drops(attachment)
            self._check_exited(attachment)
            await self._ticker.wait()

    def _count_shim_drops(self, attachment: _Attachment) -> None:
        """Events the shim could not hand to the binding (its bounded queue overflowed, or the
        page broke the binding): the per-document count in its snapshots, turned into a counter."""
        target = self.state.target(self.browser, attachment.target_id)
        if target is None or target.current_doc is None:
            return
        key = (self.browser, attachment.target_id)
        doc, seen = self.health.shim_drops_seen.get(key, (None, 0))
        failed = target.shim_events_failed
        previous = seen if doc == target.current_doc else 0
        if failed > previous:
            self.health.dropped_events["shim_undelivered"] += failed - previous
        self.health.shim_drops_seen[key] = (target.current_doc, max(failed, previous))

    def _check_exited(self, attachment: _Attachment) -> None:
        """``--reload-after-exit``: reload a kept-open page once its Go program is over for long enough."""
        kept = self._kept(attachment.target_id)
        if kept is None or self.reload_after_exit is None or kept.restoring:
            return
        target = self.state.target(self.browser, attachment.target_id)
        current = [] if target is None else [i for k, i in target.instances.items() if k[0] == target.current_doc]
        if not current or any(i.running for i in current):
            kept.exited_since = None
            return
        now = time.monotonic()
        if kept.exited_since is None:
            kept.exited_since = now
            log.info("%s: its Go program exited; reloading in %g s", kept.url, self.reload_after_exit)
        if now - kept.exited_since >= self.reload_after_exit:
            kept.exited_since = None
            self._spawn(self._restore(kept, "after_exit"))

    async def _release(self, session_id: str, waiting: bool) -> None:
        try:
            if waiting:
                await self.connection.send("Runtime.runIfWaitingForDebugger", session_id=session_id)
            await self.connection.send("Target.detachFromTarget", {"sessionId": session_id})
        except CDPError:
            pass

    # -- kept-open pages ---------------------------------------------------------------------------

    def _kept(self, target_id: str) -> KeptPage | None:
        return next((k for k in self.kept if k.target_id == target_id), None)

    async def _open(self, kept: KeptPage) -> None:
        answer = await self.connection.send("Target.createTarget", {"url": kept.url})
        target_id = answer.get("targetId")
        if isinstance(target_id, str):
            kept.target_id = target_id
            log.info("opened %s", kept.url)

    async def _reload(self, kept: KeptPage, reason: str) -> None:
        attachment = self._by_target.get(kept.target_id or "")
        if attachment is None:
            # Not attached (any more): a fresh tab does the same job.
            if kept.target_id is not None:
                target_id, kept.target_id = kept.target_id, None  # its destruction is not a close to restore
                await self.connection.send("Target.closeTarget", {"targetId": target_id})
            await self._open(kept)
            return
        await self.connection.send("Page.reload", session_id=attachment.session_id, timeout=self.config.command_timeout)
        log.info("reloaded %s (%s)", kept.url, reason)

    async def _restore(self, kept: KeptPage, reason: str) -> None:
        """Open a closed kept page again, or reload it (crashed, Go exited), backing off while it
        keeps failing; retried until it works or this connection ends."""
        if kept.restoring:
            return
        kept.restoring = True
        try:
            await asyncio.sleep(kept.restore_delay(reason))
            retries = iter(RESTORE_DELAYS)
            while True:
                try:
                    if kept.target_id is None:
                        await self._open(kept)
                    else:
                        await self._reload(kept, reason)
                    break
                except ConnectionLost:
                    return  # the next connection restores what is missing
                except CDPError as exc:
                    log.warning("restoring %s (%s) failed: %s", kept.url, reason, exc)
                    await asyncio.sleep(next(retries, RESTORE_DELAYS[-1]))
            kept.last_restored = time.monotonic()
            self.health.page_restores[(kept.page, reason)] += 1
        finally:
            kept.restoring = False

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

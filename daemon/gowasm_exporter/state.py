"""The daemon's model: browsers, targets, Go instances, accumulated counters, instance ends.

Everything here is plain data changed by synchronous methods on the event loop; there is no I/O,
so the collectors and the HTTP handlers read it directly and tests drive it with plain values.

Counting rules (the metric contract in the README):
- the shim's counters are cumulative per Go instance; the state turns each new reading into a
  delta and adds it to the counter of the instance's (``page``, ``module``) label set, which lives
  as long as the daemon, so counters survive reloads, restarts and closed tabs;
- gauges (refs, memory, instances) are summed over the *running* instances of a label set, and
  a label set with no running instance has no gauge series;
- every end of a running instance is recorded once, as an :class:`InstanceEnd`: ``panic`` and
  ``fatal`` (from the runtime's text), ``exit`` (a code and no panic), ``unload`` (its page
  navigated away or closed while Go ran) and ``crash`` (its renderer crashed).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from .labels import LabelCap, module_label, page_label
from .panics import parse_exit_text
from .schema import (
    DURATION_BOUNDS,
    DocumentFlush,
    ExitCause,
    FuncSite,
    InstanceExit,
    InstanceSnapshot,
    InstanceStart,
    LateCall,
    ShimEvent,
    Snapshot,
)

Labels = tuple[str, str]  # (page, module)

RETIRED_DOCS_PER_TARGET = 4
MAX_DETACHED_TARGETS = 1000  # targets kept per browser across a reconnect
HISTORY_POINTS = 300  # five minutes at the default poll interval
LATE_CALLS_KEPT = 3
END_KINDS = ("panic", "fatal", "exit", "unload", "crash")
TARGET_TYPES = ("page", "iframe", "worker")
# The message of an "unload" end when a target goes away while Go runs in it.
GONE_MESSAGES = {
    "page": "the page closed while Go was running",
    "iframe": "the iframe was removed or navigated away while Go was running",
    "worker": "the worker was terminated while Go was running",
}
# Why a page payload can be rejected (gowasm_exporter_rejected_events_total starts at 0 for each).
REJECT_REASONS = (
    "invalid",
    "rate_limited",
    "snapshot_invalid",
    "snapshot_exception",
    "too_many_instances",
    "other_frame",  # binding calls from an execution context that is no frame's document (an isolated world)
)
# Bounds on what one target can make the daemon remember, whatever its page sends: instances of
# its current document (the shim itself reports at most 64 per document), and instances of its
# retired documents (without it, events naming endless iids of one fake document would pile up).
# Each may hold an end with a trace of up to 64 KiB: a page costs 12 MiB at the very most.
MAX_INSTANCES_PER_TARGET = 128
MAX_RETIRED_INSTANCES_PER_TARGET = 64


@dataclass(slots=True)
class InstanceEnd:
    """How one Go instance ended: what ``/api/panics`` shows and the event log writes.

    ``calls_after_exit`` and ``late_calls`` keep growing after the end: they are the calls into
    the dead instance that this end caused.
    """

    time: float
    browser: str
    target_id: str
    page: str
    module: str
    doc: str
    iid: int
    kind: str  # one of END_KINDS
    message: str
    instrumented: str = "early"  # how the instance was instrumented: "early" or "late"
    value: str | None = None  # the panic value or fatal error text
    exit_code: int | None = None
    trace: str = ""
    trace_truncated: bool = False
    goroutine: int | None = None
    top_function: str | None = None
    top_location: str | None = None
    created_by: tuple[str, ...] = ()
    cause: ExitCause | None = None
    calls_after_exit: int = 0
    late_calls: list[LateCall] = field(default_factory=list)


@dataclass(slots=True)
class InstanceState:
    """One Go instance of one document of one target."""

    doc: str
    iid: int
    page: str
    module: str
    module_url: str | None
    mode: str
    first_seen: float
    funcs_created: int = 0
    func_calls: int = 0
    calls_after_exit: int = 0
    exited: bool = False
    exit_code: int | None = None
    refs: int | None = None
    memory_bytes: int | None = None
    duration_buckets: tuple[int, ...] = ()
    duration_sum: float = 0.0
    long_calls: int = 0
    accounting: str = "late_attach"
    flavour: str = "go"
    funcs_released: int = 0
    calls_after_release: int = 0
    goroutines: int | None = None
    gc_cycles: int = 0
    recovered_panics: int = 0
    sites: tuple[FuncSite, ...] = ()
    end: InstanceEnd | None = None
    # (time, funcs live or created, refs, memory) per poll, for the status page's plots
    history: deque[tuple[float, int, int | None, int | None]] = field(
        default_factory=lambda: deque(maxlen=HISTORY_POINTS)
    )

    @property
    def labels(self) -> Labels:
        return (self.page, self.module)

    @property
    def funcs_live(self) -> int | None:
        """created - released, known only when every Release of the instance is seen."""
        return self.funcs_created - self.funcs_released if self.accounting == "exact" else None

    @property
    def running(self) -> bool:
        return not self.exited


@dataclass(slots=True)
class PageMetrics:
    js_heap_used_bytes: float | None = None
    js_heap_total_bytes: float | None = None
    dom_nodes: float | None = None
    js_event_listeners: float | None = None


@dataclass(slots=True)
class TargetState:
    browser: str
    target_id: str
    type: str  # "page", "iframe" (out-of-process, or a same-process frame's document) or "worker"
    url: str
    attach: str  # "early": set up before its first script; "late": was already running
    attached_at: float
    watched: bool = True  # False: its URL is filtered out; followed only to see its documents end
    parent: str | None = None  # the target id of the page (or iframe) an iframe or worker is in
    current_doc: str | None = None
    instances: dict[tuple[str, int], InstanceState] = field(default_factory=dict)
    retired: dict[tuple[str, int], InstanceState] = field(default_factory=dict)
    metrics: PageMetrics = field(default_factory=PageMetrics)
    missing_hooks: tuple[str, ...] = ()
    shim_errors: int = 0
    shim_events_failed: int = 0
    polls: int = 0  # snapshots taken: lets a reader wait for "the state has caught up"


@dataclass(slots=True)
class BrowserState:
    name: str
    up: bool = False
    version: str | None = None
    connected_since: float | None = None
    targets: dict[str, TargetState] = field(default_factory=dict)
    # The targets of a connection that dropped, kept until the next connection re-attaches to
    # them (or finds them gone): the shim's counters are cumulative per instance and survive in
    # the page, so a re-attached instance must continue from its last reading, not from zero.
    detached: dict[str, TargetState] = field(default_factory=dict)


@dataclass(slots=True)
class LabelCounters:
    funcs_created: int = 0
    func_calls: int = 0
    calls_after_exit: int = 0
    duration_buckets: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BOUNDS) + 1))
    duration_sum: float = 0.0
    long_calls: int = 0
    funcs_released: int = 0
    calls_after_release: int = 0
    gc_cycles: int = 0
    recovered_panics: int = 0


class ExporterState:
    def __init__(
        self,
        *,
        max_label_values: int = 100,
        end_history: int = 100,
        on_end: Callable[[InstanceEnd], None] | None = None,
    ) -> None:
        self.browsers: dict[str, BrowserState] = {}
        self.counters: dict[Labels, LabelCounters] = {}
        self.panics: Counter[tuple[str, str, str]] = Counter()
        self.exits: Counter[tuple[str, str, str]] = Counter()
        self.last_panic: dict[Labels, float] = {}
        self.page_crashes: Counter[str] = Counter()
        self.ends: deque[InstanceEnd] = deque(maxlen=end_history)
        self.rejected_events: Counter[str] = Counter({reason: 0 for reason in REJECT_REASONS})
        self.on_end = on_end
        self._page_cap = LabelCap(max_label_values)
        self._module_cap = LabelCap(max_label_values)

    # -- browsers and targets ------------------------------------------------------------------

    def browser(self, name: str) -> BrowserState:
        state = self.browsers.get(name)
        if state is None:
            state = self.browsers[name] = BrowserState(name)
        return state

    def browser_connected(self, name: str, version: str | None) -> None:
        state = self.browser(name)
        state.up = True
        state.version = version
        state.connected_since = time.time()

    def browser_disconnected(self, name: str) -> None:
        """The socket is gone: every attachment is gone with it (counters stay).

        The pages themselves may well run on, so their instances are not recorded as ended.
        """
        state = self.browser(name)
        state.up = False
        state.connected_since = None
        state.detached.update(state.targets)
        while len(state.detached) > MAX_DETACHED_TARGETS:
            del state.detached[next(iter(state.detached))]
        state.targets.clear()

    def forget_detached(self, browser: str, alive: Collection[str]) -> None:
        """A new connection listed the browser's targets: what was kept for the others is gone."""
        state = self.browser(browser)
        for target_id in [t for t in state.detached if t not in alive]:
            del state.detached[target_id]

    def add_target(
        self,
        browser: str,
        target_id: str,
        type_: str,
        url: str,
        *,
        early: bool,
        watched: bool = True,
        parent: str | None = None,
    ) -> TargetState:
        target = TargetState(browser, target_id, type_, url, "early" if early else "late", time.time(), watched, parent)
        previous = self.browser(browser).detached.pop(target_id, None)
        if previous is not None:
            # Re-attached after a reconnect: same page, same documents, same instances.
            target.current_doc = previous.current_doc
            target.instances = previous.instances
            target.retired = previous.retired
        self.browser(browser).targets[target_id] = target
        return target

    def watched_targets(self, browser: BrowserState) -> list[TargetState]:
        return [t for t in browser.targets.values() if t.watched]

    def target(self, browser: str, target_id: str) -> TargetState | None:
        state = self.browsers.get(browser)
        return None if state is None else state.targets.get(target_id)

    def remove_target(self, browser: str, target_id: str, *, closed: bool = True) -> None:
        """Stop reporting a target; ``closed``: it went away (its running instances ended)."""
        state = self.browsers.get(browser)
        target = None if state is None else state.targets.pop(target_id, None)
        if target is not None and closed and target.watched:
            message = GONE_MESSAGES.get(target.type, GONE_MESSAGES["page"])
            for instance in target.instances.values():
                self._end_without_exit(target, instance, "unload", message)

    def target_crashed(self, browser: str, target_id: str) -> None:
        target = self.target(browser, target_id)
        if target is None or not target.watched:
            return
        self.page_crashes[self.page_label_of(target)] += 1
        for instance in target.instances.values():
            self._end_without_exit(target, instance, "crash", "the page's renderer crashed while Go was running")

    def set_target_url(self, browser: str, target_id: str, url: str, *, watched: bool) -> None:
        """A target's URL changed (navigation); ``watched``: whether the filters report it now.

        A filtered-out page is still followed, so that instances it ran end when its document is
        replaced, but nothing it does is counted.
        """
        target = self.target(browser, target_id)
        if target is not None:
            target.url = url
            target.watched = watched

    def page_label_of(self, target: TargetState) -> str:
        return self._page_cap(page_label(target.url))

    def set_page_metrics(self, browser: str, target_id: str, metrics: PageMetrics) -> None:
        target = self.target(browser, target_id)
        if target is not None:
            target.metrics = metrics

    # -- what the shim reports -----------------------------------------------------------------

    def reject(self, reason: str) -> None:
        self.rejected_events[reason] += 1

    def apply_snapshot(self, browser: str, target_id: str, snap: Snapshot, *, final: bool = False) -> None:
        """Take a polled snapshot (or a document's final one, ``final``)."""
        target = self.target(browser, target_id)
        if target is None:
            return
        if not target.watched:
            if not final and snap.doc != target.current_doc:
                self._retire_document(target, keep=snap.doc)
                target.current_doc = snap.doc
            return
        if not final:
            target.polls += 1
            target.missing_hooks = snap.missing_hooks
            target.shim_errors = snap.shim_errors
            target.shim_events_failed = snap.events_failed
            if snap.doc != target.current_doc:
                self._retire_document(target, keep=snap.doc)
                target.current_doc = snap.doc
        now = time.time()
        for item in snap.instances:
            instance = self._instance(target, snap.doc, item.iid, item.mode, item.module)
            if instance is not None:
                self._advance(instance, item)
                if not final and instance.running:
                    live = instance.funcs_live
                    funcs = instance.funcs_created if live is None else live
                    instance.history.append((now, funcs, instance.refs, instance.memory_bytes))
        if not final:
            reported = {(snap.doc, item.iid) for item in snap.instances}
            for key in [k for k in target.instances if k[0] == snap.doc and k not in reported]:
                if target.instances[key].running:
                    # Not forgotten: a poll evaluated just before the instance started can be
                    # answered after its start event. Dropping it would lose its end, and count
                    # it twice when the next poll lists it again.
                    continue
                target.retired[key] = target.instances.pop(key)  # the shim forgot it (its own bound)

    def apply_event(self, browser: str, target_id: str, event: ShimEvent) -> InstanceEnd | None:
        """Take a pushed event; return the end it recorded, if any."""
        target = self.target(browser, target_id)
        if target is None:
            return None
        if isinstance(event, DocumentFlush):
            # A live push is a poll the page made itself; a final one is the document's last word.
            self.apply_snapshot(browser, target_id, event.snapshot, final=not event.live)
            return None
        if event.doc != target.current_doc and (event.doc, event.iid) not in target.retired:
            # A new document announces itself before the next poll sees it.
            self._retire_document(target, keep=event.doc)
            target.current_doc = event.doc
        if not target.watched:
            return None
        if isinstance(event, InstanceStart):
            self._instance(target, event.doc, event.iid, event.mode, event.module)
            return None
        if isinstance(event, LateCall):
            self._late_call(target, event)
            return None
        return self._exit(target, event)

    def _exit(self, target: TargetState, event: InstanceExit) -> InstanceEnd | None:
        mode = event.instance.mode if event.instance is not None else "late"
        module = event.instance.module if event.instance is not None else None
        instance = self._instance(target, event.doc, event.iid, mode, module)
        if instance is None or instance.end is not None:
            return None  # an end is recorded once, however often a page claims it
        if event.instance is not None:
            self._advance(instance, event.instance)
        instance.exited = True
        instance.exit_code = event.code
        code = str(event.code) if event.code is not None and 0 <= event.code <= 255 else "other"
        self.exits[(*instance.labels, code)] += 1
        info = parse_exit_text(event.stderr)
        end = self._new_end(target, instance, "exit", f"exit code {event.code}")
        end.exit_code = event.code
        end.cause = event.cause
        end.calls_after_exit = instance.calls_after_exit
        if info is not None:
            self.panics[(*instance.labels, info.kind)] += 1
            self.last_panic[instance.labels] = end.time
            end.kind = info.kind
            end.message = end.value = info.message
            end.trace = event.stderr
            end.trace_truncated = event.stderr_truncated
            end.goroutine = info.goroutine
            end.top_function = info.top_function
            end.top_location = info.top_location
            end.created_by = info.created_by
        return self._record(instance, end)

    def _end_without_exit(self, target: TargetState, instance: InstanceState, kind: str, message: str) -> None:
        """An instance that was running when its page went away or crashed."""
        if not instance.running or instance.end is not None:
            return
        instance.exited = True
        self._record(instance, self._new_end(target, instance, kind, message))

    def _new_end(self, target: TargetState, instance: InstanceState, kind: str, message: str) -> InstanceEnd:
        return InstanceEnd(
            time=time.time(),
            browser=target.browser,
            target_id=target.target_id,
            page=instance.page,
            module=instance.module,
            doc=instance.doc,
            iid=instance.iid,
            kind=kind,
            message=message,
            instrumented=instance.mode,
        )

    def _record(self, instance: InstanceState, end: InstanceEnd) -> InstanceEnd:
        instance.end = end
        self.ends.appendleft(end)
        if self.on_end is not None:
            self.on_end(end)
        return end

    def _late_call(self, target: TargetState, event: LateCall) -> None:
        instance = target.instances.get((event.doc, event.iid)) or target.retired.get((event.doc, event.iid))
        if instance is None or instance.end is None or len(instance.end.late_calls) >= LATE_CALLS_KEPT:
            return
        instance.end.late_calls.append(event)
        instance.end.calls_after_exit = max(instance.end.calls_after_exit, event.count)

    def _instance(
        self, target: TargetState, doc: str, iid: int, mode: str, module_url: str | None
    ) -> InstanceState | None:
        key = (doc, iid)
        instance = target.instances.get(key) or target.retired.get(key)
        if instance is not None:
            if instance.module_url is None and module_url is not None and instance.funcs_created == 0:
                # Late-known module URL before anything was counted: the label can still move.
                instance.module_url = module_url
                instance.module = self._module_cap(module_label(module_url))
                self._init_series(instance.labels)
            return instance
        if doc != target.current_doc:
            return None  # a document that is gone: too late to start counting it
        if len(target.instances) >= MAX_INSTANCES_PER_TARGET:
            self.reject("too_many_instances")
            return None
        instance = InstanceState(
            doc=doc,
            iid=iid,
            page=self.page_label_of(target),
            module=self._module_cap(module_label(module_url)),
            module_url=module_url,
            mode=mode,
            first_seen=time.time(),
        )
        target.instances[key] = instance
        self._init_series(instance.labels)
        return instance

    def _init_series(self, labels: Labels) -> None:
        """Counters of a new label set start at 0, so that its first panic is an increase."""
        if labels not in self.counters:
            self.counters[labels] = LabelCounters()
            for kind in ("panic", "fatal"):
                self.panics[(*labels, kind)] += 0

    def _advance(self, instance: InstanceState, item: InstanceSnapshot) -> None:
        """Fold a reading of the shim's per-instance counters into the label counters."""
        counters = self.counters.setdefault(instance.labels, LabelCounters())
        probes = item.probes
        readings = {
            "funcs_created": item.funcs_created,
            "func_calls": item.func_calls,
            "calls_after_exit": item.calls_after_exit,
            "funcs_released": item.funcs_released,
            "calls_after_release": item.calls_after_release,
            "gc_cycles": None if probes is None else probes.gc_cycles,
            "recovered_panics": None if probes is None else probes.recovered_panics,
        }
        for name, reading in readings.items():
            # Instance and label counters share the field names. A reading below the last one
            # would be a page lying (the shim's counters only grow): count nothing for it.
            last = getattr(instance, name)
            if reading is not None and reading > last:
                setattr(counters, name, getattr(counters, name) + reading - last)
                setattr(instance, name, reading)
        if instance.end is not None:
            instance.end.calls_after_exit = instance.calls_after_exit
        if item.durations is not None:
            self._advance_durations(instance, counters, item)
        instance.accounting = item.accounting
        instance.flavour = item.flavour
        if probes is not None:
            instance.goroutines = probes.goroutines
        instance.sites = item.sites
        instance.refs = item.refs
        instance.memory_bytes = item.memory_bytes
        if item.exited and not instance.exited:
            # Seen exited before (or without) its exit event: stop describing it as running;
            # the exit itself is counted when the event arrives.
            instance.exited = True
            instance.exit_code = item.exit_code

    @staticmethod
    def _advance_durations(instance: InstanceState, counters: LabelCounters, item: InstanceSnapshot) -> None:
        durations = item.durations
        assert durations is not None
        previous = instance.duration_buckets or (0,) * len(durations.buckets)
        if any(new < old for new, old in zip(durations.buckets, previous, strict=True)):
            return  # not the same instance's history: count nothing
        for i, (new, old) in enumerate(zip(durations.buckets, previous, strict=True)):
            counters.duration_buckets[i] += new - old
        counters.duration_sum += max(0.0, durations.sum - instance.duration_sum)
        counters.long_calls += max(0, durations.long - instance.long_calls)
        instance.duration_buckets = durations.buckets
        instance.duration_sum = max(durations.sum, instance.duration_sum)
        instance.long_calls = max(durations.long, instance.long_calls)

    def _retire_document(self, target: TargetState, keep: str) -> None:
        """A navigation replaced the document: its instances stop being gauges.

        Those still running end as ``unload``. They stay reachable for a while, because the old
        document's final snapshot (pushed on ``beforeunload``) can arrive after the new
        document's first poll.
        """
        for key in [k for k in target.instances if k[0] != keep]:
            instance = target.instances.pop(key)
            self._end_without_exit(target, instance, "unload", "the page navigated away while Go was running")
            target.retired[key] = instance
        docs = list(dict.fromkeys(k[0] for k in target.retired))
        for doc in docs[:-RETIRED_DOCS_PER_TARGET]:
            for key in [k for k in target.retired if k[0] == doc]:
                del target.retired[key]
        while len(target.retired) > MAX_RETIRED_INSTANCES_PER_TARGET:
            del target.retired[next(iter(target.retired))]  # the oldest first

    # -- reading -------------------------------------------------------------------------------

    def running_instances(self) -> list[InstanceState]:
        return [
            instance
            for browser in self.browsers.values()
            for target in self.watched_targets(browser)
            for instance in target.instances.values()
            if instance.running
        ]

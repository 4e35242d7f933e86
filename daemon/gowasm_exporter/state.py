"""The daemon's model: browsers, targets, Go instances, accumulated counters, panic history.

Everything here is plain data changed by synchronous methods on the event loop; there is no I/O,
so the collectors and the HTTP handlers read it directly and tests drive it with plain values.

Counting rules (the metric contract in the README):
- the shim's counters are cumulative per Go instance; the state turns each new reading into a
  delta and adds it to the counter of the instance's (``page``, ``module``) label set, which lives
  as long as the daemon, so counters survive reloads, restarts and closed tabs;
- gauges (refs, memory, instances) are summed over the *running* instances of a label set, and
  a label set with no running instance has no gauge series.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field

from .labels import LabelCap, module_label, page_label
from .panics import parse_exit_text
from .schema import DocumentFlush, InstanceExit, InstanceSnapshot, InstanceStart, ShimEvent, Snapshot

Labels = tuple[str, str]  # (page, module)

RETIRED_DOCS_PER_TARGET = 4


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

    @property
    def labels(self) -> Labels:
        return (self.page, self.module)

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
    type: str
    url: str
    attach: str  # "early": set up before its first script; "late": was already running
    attached_at: float
    current_doc: str | None = None
    instances: dict[tuple[str, int], InstanceState] = field(default_factory=dict)
    retired: dict[tuple[str, int], InstanceState] = field(default_factory=dict)
    metrics: PageMetrics = field(default_factory=PageMetrics)
    missing_hooks: tuple[str, ...] = ()
    shim_errors: int = 0
    polls: int = 0  # snapshots taken: lets a reader wait for "the state has caught up"


@dataclass(slots=True)
class BrowserState:
    name: str
    up: bool = False
    version: str | None = None
    connected_since: float | None = None
    targets: dict[str, TargetState] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PanicRecord:
    """An instance that ended with a panic or a fatal error, as shown on ``/api/panics``."""

    time: float
    browser: str
    target_id: str
    page: str
    module: str
    iid: int
    kind: str
    message: str
    trace: str
    trace_truncated: bool
    exit_code: int | None
    goroutine: int | None
    top_function: str | None
    top_location: str | None


@dataclass(slots=True)
class LabelCounters:
    funcs_created: int = 0
    func_calls: int = 0
    calls_after_exit: int = 0


class ExporterState:
    def __init__(self, *, max_label_values: int = 100, panic_history: int = 100) -> None:
        self.browsers: dict[str, BrowserState] = {}
        self.counters: dict[Labels, LabelCounters] = {}
        self.panics: Counter[tuple[str, str, str]] = Counter()
        self.exits: Counter[tuple[str, str, str]] = Counter()
        self.panic_history: deque[PanicRecord] = deque(maxlen=panic_history)
        self.rejected_events: Counter[str] = Counter()
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
        """The socket is gone: every attachment is gone with it (counters stay)."""
        state = self.browser(name)
        state.up = False
        state.connected_since = None
        state.targets.clear()

    def add_target(self, browser: str, target_id: str, type_: str, url: str, *, early: bool) -> TargetState:
        target = TargetState(browser, target_id, type_, url, "early" if early else "late", time.time())
        self.browser(browser).targets[target_id] = target
        return target

    def target(self, browser: str, target_id: str) -> TargetState | None:
        state = self.browsers.get(browser)
        return None if state is None else state.targets.get(target_id)

    def remove_target(self, browser: str, target_id: str) -> None:
        state = self.browsers.get(browser)
        if state is not None:
            state.targets.pop(target_id, None)

    def set_target_url(self, browser: str, target_id: str, url: str) -> None:
        target = self.target(browser, target_id)
        if target is not None:
            target.url = url

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
        if not final:
            target.polls += 1
            target.missing_hooks = snap.missing_hooks
            target.shim_errors = snap.shim_errors
            if snap.doc != target.current_doc:
                self._retire_document(target, keep=snap.doc)
                target.current_doc = snap.doc
        for item in snap.instances:
            instance = self._instance(target, snap.doc, item.iid, item.mode, item.module)
            if instance is not None:
                self._advance(instance, item)
        if not final:
            reported = {(snap.doc, item.iid) for item in snap.instances}
            for key in [k for k in target.instances if k[0] == snap.doc and k not in reported]:
                del target.instances[key]  # the shim forgot it (its own bound): so do we

    def apply_event(self, browser: str, target_id: str, event: ShimEvent) -> PanicRecord | None:
        """Take a pushed event; return the panic record it produced, if any."""
        target = self.target(browser, target_id)
        if target is None:
            return None
        if isinstance(event, DocumentFlush):
            self.apply_snapshot(browser, target_id, event.snapshot, final=True)
            return None
        if event.doc != target.current_doc and (event.doc, event.iid) not in target.retired:
            # A new document announces itself before the next poll sees it.
            self._retire_document(target, keep=event.doc)
            target.current_doc = event.doc
        if isinstance(event, InstanceStart):
            self._instance(target, event.doc, event.iid, event.mode, event.module)
            return None
        return self._exit(target, event)

    def _exit(self, target: TargetState, event: InstanceExit) -> PanicRecord | None:
        mode = event.instance.mode if event.instance is not None else "late"
        module = event.instance.module if event.instance is not None else None
        instance = self._instance(target, event.doc, event.iid, mode, module)
        if instance is None or instance.exited:
            return None  # an exit is counted once, however often a page claims it
        if event.instance is not None:
            self._advance(instance, event.instance)
        instance.exited = True
        instance.exit_code = event.code
        code = str(event.code) if event.code is not None and 0 <= event.code <= 255 else "other"
        self.exits[(*instance.labels, code)] += 1
        info = parse_exit_text(event.stderr)
        if info is None:
            return None
        self.panics[(*instance.labels, info.kind)] += 1
        record = PanicRecord(
            time=time.time(),
            browser=target.browser,
            target_id=target.target_id,
            page=instance.page,
            module=instance.module,
            iid=instance.iid,
            kind=info.kind,
            message=info.message,
            trace=event.stderr,
            trace_truncated=event.stderr_truncated,
            exit_code=event.code,
            goroutine=info.goroutine,
            top_function=info.top_function,
            top_location=info.top_location,
        )
        self.panic_history.appendleft(record)
        return record

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
                self.counters.setdefault(instance.labels, LabelCounters())
            return instance
        if doc != target.current_doc:
            return None  # a document that is gone: too late to start counting it
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
        self.counters.setdefault(instance.labels, LabelCounters())
        return instance

    def _advance(self, instance: InstanceState, item: InstanceSnapshot) -> None:
        """Fold a reading of the shim's per-instance counters into the label counters."""
        counters = self.counters.setdefault(instance.labels, LabelCounters())
        # A reading below the last one would be a page lying (the shim's counters only grow):
        # count nothing for it rather than subtract.
        if item.funcs_created > instance.funcs_created:
            counters.funcs_created += item.funcs_created - instance.funcs_created
            instance.funcs_created = item.funcs_created
        if item.func_calls > instance.func_calls:
            counters.func_calls += item.func_calls - instance.func_calls
            instance.func_calls = item.func_calls
        if item.calls_after_exit > instance.calls_after_exit:
            counters.calls_after_exit += item.calls_after_exit - instance.calls_after_exit
            instance.calls_after_exit = item.calls_after_exit
        instance.refs = item.refs
        instance.memory_bytes = item.memory_bytes
        if item.exited and not instance.exited:
            # Seen exited before (or without) its exit event: stop describing it as running;
            # the exit itself is counted when the event arrives.
            instance.exited = True
            instance.exit_code = item.exit_code

    def _retire_document(self, target: TargetState, keep: str) -> None:
        """A navigation replaced the document: its instances stop being gauges.

        They stay reachable for a while, because the old document's final snapshot (pushed on
        ``pagehide``) can arrive after the new document's first poll.
        """
        for key in [k for k in target.instances if k[0] != keep]:
            target.retired[key] = target.instances.pop(key)
        docs = list(dict.fromkeys(k[0] for k in target.retired))
        for doc in docs[:-RETIRED_DOCS_PER_TARGET]:
            for key in [k for k in target.retired if k[0] == doc]:
                del target.retired[key]

    # -- reading -------------------------------------------------------------------------------

    def running_instances(self) -> list[InstanceState]:
        return [
            instance
            for browser in self.browsers.values()
            for target in browser.targets.values()
            for instance in target.instances.values()
            if instance.running
        ]

"""Prometheus collectors: the state, turned into metric families at scrape time.

``collect()`` reads memory only (no CDP call while ``/metrics`` renders), and yields fresh families
on every scrape, so series of closed pages and exited instances disappear by construction
(client_python's custom-collector pattern).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from .health import DROP_REASONS, ExporterHealth
from .schema import DURATION_BOUNDS
from .state import TARGET_TYPES, ExporterState, Labels

INSTANCE_LABELS = ("page", "module")


class GoInstanceCollector(Collector):
    """Counters and gauges of Go instances, per (page, module)."""

    def __init__(self, state: ExporterState, *, leak_sites: int = 10) -> None:
        self.state = state
        self.leak_sites = leak_sites

    def collect(self) -> Iterator[Metric]:
        created = CounterMetricFamily("gowasm_funcs_created", "js.FuncOf registrations.", labels=INSTANCE_LABELS)
        calls = CounterMetricFamily("gowasm_func_calls", "JS->Go callback invocations.", labels=INSTANCE_LABELS)
        after_exit = CounterMetricFamily(
            "gowasm_calls_after_exit",
            "Calls into a Go instance that has exited (callbacks and pending Go timers).",
            labels=INSTANCE_LABELS,
        )
        durations = HistogramMetricFamily(
            "gowasm_func_call_duration_seconds",
            "Time JS->Go callbacks spent in Go (the page's event loop is blocked meanwhile); every Nth call "
            "of an instance is timed and counts N times (--call-timing-sample).",
            labels=INSTANCE_LABELS,
        )
        long_calls = CounterMetricFamily(
            "gowasm_func_calls_long",
            "JS->Go callbacks that took longer than the long-call threshold; from the timed calls, each "
            "counting N times (--call-timing-sample).",
            labels=INSTANCE_LABELS,
        )
        released = CounterMetricFamily(
            "gowasm_funcs_released", "js.Func.Release calls (distinct funcs), exact.", labels=INSTANCE_LABELS
        )
        after_release = CounterMetricFamily(
            "gowasm_calls_after_release", "JS calls of a func that was released.", labels=INSTANCE_LABELS
        )
        gc_cycles = CounterMetricFamily("gowasm_gc_cycles", "Go GC cycles.", labels=INSTANCE_LABELS)
        recovered = CounterMetricFamily(
            "gowasm_recovered_panics", "Panics stopped by recover().", labels=INSTANCE_LABELS
        )
        for labels, counters in sorted(self.state.counters.items()):
            released.add_metric(labels, counters.funcs_released)
            after_release.add_metric(labels, counters.calls_after_release)
            gc_cycles.add_metric(labels, counters.gc_cycles)
            recovered.add_metric(labels, counters.recovered_panics)
            created.add_metric(labels, counters.funcs_created)
            calls.add_metric(labels, counters.func_calls)
            after_exit.add_metric(labels, counters.calls_after_exit)
            durations.add_metric(labels, _cumulative_buckets(counters.duration_buckets), counters.duration_sum)
            long_calls.add_metric(labels, counters.long_calls)
        yield created
        yield calls
        yield after_exit
        yield durations
        yield long_calls
        yield released
        yield after_release
        yield gc_cycles
        yield recovered

        refs: dict[Labels, int] = defaultdict(int)
        memory: dict[Labels, int] = defaultdict(int)
        running: dict[Labels, int] = defaultdict(int)
        for instance in self.state.running_instances():
            running[instance.labels] += 1
            if instance.refs is not None:
                refs[instance.labels] += instance.refs
            if instance.memory_bytes is not None:
                memory[instance.labels] += instance.memory_bytes
        yield _gauge("gowasm_js_refs_live", "js.Value references Go holds (running instances).", refs)
        yield _gauge("gowasm_memory_bytes", "WebAssembly linear memory size (running instances).", memory)
        yield _gauge("gowasm_instances", "Running Go instances.", running)
        yield from self._release_families()

        panics = CounterMetricFamily(
            "gowasm_panics", "Instance-ending panics, by kind (panic, fatal).", labels=(*INSTANCE_LABELS, "kind")
        )
        for key, value in sorted(self.state.panics.items()):
            panics.add_metric(key, value)
        yield panics
        exits = CounterMetricFamily(
            "gowasm_exits", "Go instance exits, by exit code.", labels=(*INSTANCE_LABELS, "code")
        )
        for key, value in sorted(self.state.exits.items()):
            exits.add_metric(key, value)
        yield exits
        last_panic = GaugeMetricFamily(
            "gowasm_last_panic_timestamp_seconds",
            "When the last instance-ending panic happened.",
            labels=INSTANCE_LABELS,
        )
        for labels, when in sorted(self.state.last_panic.items()):
            last_panic.add_metric(labels, when)
        yield last_panic

    def _release_families(self) -> Iterator[Metric]:
        live: dict[Labels, int] = defaultdict(int)
        goroutines: dict[Labels, int] = defaultdict(int)
        modes: dict[tuple[str, str, str], int] = defaultdict(int)
        by_site: dict[Labels, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for instance in self.state.running_instances():
            modes[(*instance.labels, instance.accounting)] += 1
            if instance.goroutines is not None:
                goroutines[instance.labels] += instance.goroutines
            if instance.funcs_live is not None:
                live[instance.labels] += instance.funcs_live
                for site in instance.sites:
                    by_site[instance.labels][site.site] += site.live
        yield _gauge("gowasm_funcs_live", "js.FuncOf funcs not released yet (exact accounting only).", live)
        yield _gauge("gowasm_goroutines", "Live goroutines, the runtime's own included.", goroutines)
        accounting = GaugeMetricFamily(
            "gowasm_release_accounting",
            "Running instances by how Release is counted: exact, or why not.",
            labels=(*INSTANCE_LABELS, "mode"),
        )
        for key, value in sorted(modes.items()):
            accounting.add_metric(key, value)
        yield accounting
        sites = GaugeMetricFamily(
            "gowasm_funcs_live_by_site",
            f"Live funcs by the Go function that created them: the top {self.leak_sites}, the rest as 'other'.",
            labels=(*INSTANCE_LABELS, "site"),
        )
        for labels, total in sorted(live.items()):
            ranked = sorted(by_site[labels].items(), key=lambda kv: (-kv[1], kv[0]))[: self.leak_sites]
            for site, value in ranked:
                sites.add_metric((*labels, site), value)
            other = total - sum(value for _, value in ranked)
            if other > 0:
                sites.add_metric((*labels, "other"), other)
        yield sites


class PageCollector(Collector):
    """The watched pages' own numbers, from CDP ``Performance.getMetrics``."""

    FIELDS = (
        ("gowasm_page_js_heap_used_bytes", "js_heap_used_bytes", "JS heap used by the page."),
        ("gowasm_page_js_heap_total_bytes", "js_heap_total_bytes", "JS heap size of the page."),
        ("gowasm_page_dom_nodes", "dom_nodes", "DOM nodes of the page."),
        ("gowasm_page_js_event_listeners", "js_event_listeners", "JS event listeners of the page."),
    )

    def __init__(self, state: ExporterState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        sums: dict[str, dict[str, float]] = {attr: defaultdict(float) for _, attr, _ in self.FIELDS}
        for browser in self.state.browsers.values():
            for target in self.state.watched_targets(browser):
                page = self.state.page_label_of(target)
                for _, attr, _ in self.FIELDS:
                    value = getattr(target.metrics, attr)
                    if value is not None:
                        sums[attr][page] += value
        for name, attr, doc in self.FIELDS:
            family = GaugeMetricFamily(name, doc, labels=("page",))
            for page, value in sorted(sums[attr].items()):
                family.add_metric((page,), value)
            yield family
        crashes = CounterMetricFamily("gowasm_page_crashes", "Renderer crashes of watched pages.", labels=("page",))
        for page, value in sorted(self.state.page_crashes.items()):
            crashes.add_metric((page,), value)
        yield crashes


class ExporterCollector(Collector):
    """The exporter's own health: is it connected, are its refreshes working, what did it have
    to recover from, and what did it reject or drop."""

    def __init__(self, state: ExporterState, health: ExporterHealth | None = None) -> None:
        self.state = state
        self.health = health if health is not None else ExporterHealth()

    def collect(self) -> Iterator[Metric]:
        health = self.health
        yield GaugeMetricFamily("gowasm_exporter_up", "1: the exporter runs and answers scrapes.", value=1.0)
        up = GaugeMetricFamily("gowasm_exporter_browser_up", "1 while connected to the browser.", labels=("browser",))
        targets = GaugeMetricFamily(
            "gowasm_exporter_targets",
            "Watched targets: pages, iframes (out-of-process ones, and same-process ones running Go), workers.",
            labels=("browser", "type"),
        )
        reconnects = CounterMetricFamily(
            "gowasm_exporter_reconnects", "Connections to the browser after the first one.", labels=("browser",)
        )
        failures = CounterMetricFamily(
            "gowasm_exporter_connect_failures", "Connection attempts that failed.", labels=("browser",)
        )
        crashes = CounterMetricFamily(
            "gowasm_exporter_renderer_crashes",
            "Renderer crashes seen (Target.targetCrashed), watched pages or not.",
            labels=("browser",),
        )
        for name, browser in sorted(self.state.browsers.items()):
            up.add_metric((name,), 1.0 if browser.up else 0.0)
            by_type = Counter({kind: 0 for kind in TARGET_TYPES})
            by_type.update(t.type for t in self.state.watched_targets(browser))
            for kind, count in sorted(by_type.items()):
                targets.add_metric((name, kind), count)
            reconnects.add_metric((name,), health.reconnects(name))
            failures.add_metric((name,), health.connect_failures[name])
            crashes.add_metric((name,), health.renderer_crashes[name])
        yield up
        yield targets
        yield reconnects
        yield failures
        yield crashes

        refresh_labels = ("browser", "subsystem")
        duration = GaugeMetricFamily(
            "gowasm_exporter_last_refresh_duration_seconds",
            "How long the last refresh took: connect (a connection attempt), heartbeat, poll (of one page).",
            labels=refresh_labels,
        )
        success = GaugeMetricFamily(
            "gowasm_exporter_last_refresh_success", "1 if the last refresh succeeded.", labels=refresh_labels
        )
        when = GaugeMetricFamily(
            "gowasm_exporter_last_refresh_timestamp_seconds", "When the last refresh ended.", labels=refresh_labels
        )
        for key, refresh in sorted(health.refreshes.items()):
            duration.add_metric(key, refresh.duration_seconds)
            success.add_metric(key, 1.0 if refresh.success else 0.0)
            when.add_metric(key, refresh.timestamp)
        yield duration
        yield success
        yield when

        reloads = CounterMetricFamily(
            "gowasm_exporter_page_reloads",
            "Kept-open pages (--open) restored: reopened (closed), reloaded (crash, after_exit).",
            labels=("page", "reason"),
        )
        for key, value in sorted(health.page_restores.items()):
            reloads.add_metric(key, value)
        yield reloads
        rejected = CounterMetricFamily(
            "gowasm_exporter_rejected_events", "Page payloads rejected, by reason.", labels=("reason",)
        )
        for reason, value in sorted(self.state.rejected_events.items()):
            rejected.add_metric((reason,), value)
        yield rejected
        dropped = CounterMetricFamily(
            "gowasm_exporter_dropped_events",
            "Events dropped by a bounded queue: shim_undelivered (the shim could not hand them to the "
            "binding), history_full (instance ends pushed out of the /api/panics history).",
            labels=("reason",),
        )
        for reason in DROP_REASONS:
            dropped.add_metric((reason,), health.dropped_events[reason])
        yield dropped


def _cumulative_buckets(per_bucket: list[int]) -> list[tuple[str, float]]:
    out = []
    total = 0
    for bound, count in zip((*DURATION_BOUNDS, float("inf")), per_bucket, strict=True):
        total += count
        out.append(("+Inf" if bound == float("inf") else repr(bound), float(total)))
    return out


def _gauge(name: str, doc: str, values: dict[Labels, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=INSTANCE_LABELS)
    for labels, value in sorted(values.items()):
        family.add_metric(labels, value)
    return family

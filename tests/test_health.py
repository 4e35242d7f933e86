"""The exporter's self-metrics: health bookkeeping and ExporterCollector, on a fresh registry."""

from __future__ import annotations

import time

from prometheus_client import generate_latest

from gowasm_exporter.cli import build_registry
from gowasm_exporter.health import ExporterHealth
from gowasm_exporter.state import ExporterState


def test_history_drops_are_counted_exactly() -> None:
    """Once more ends were recorded than the history holds, each one pushes one out."""
    health = ExporterHealth()
    for _ in range(7):
        health.end_recorded(5)
    assert health.dropped_events["history_full"] == 2


def test_self_metrics_are_exposed_with_their_types() -> None:
    """Every gowasm_exporter_* family of the README is there, each browser's counters from 0."""
    state, health = ExporterState(), ExporterHealth()
    state.browser_connected("b", "Chrome")
    health.connections["b"] += 3
    health.connect_failures["b"] += 2
    health.renderer_crashes["b"] += 1
    health.keep_open(["http://app.test/"])
    health.page_restores[("http://app.test/", "after_exit")] += 4
    health.refreshed("b", "poll", time.monotonic() - 0.25, False)
    registry = build_registry(state, health=health)
    text = generate_latest(registry).decode()
    for name, kind in [
        ("gowasm_exporter_up", "gauge"),
        ("gowasm_exporter_browser_up", "gauge"),
        ("gowasm_exporter_targets", "gauge"),
        ("gowasm_exporter_reconnects_total", "counter"),
        ("gowasm_exporter_connect_failures_total", "counter"),
        ("gowasm_exporter_renderer_crashes_total", "counter"),
        ("gowasm_exporter_last_refresh_duration_seconds", "gauge"),
        ("gowasm_exporter_last_refresh_success", "gauge"),
        ("gowasm_exporter_last_refresh_timestamp_seconds", "gauge"),
        ("gowasm_exporter_page_reloads_total", "counter"),
        ("gowasm_exporter_rejected_events_total", "counter"),
        ("gowasm_exporter_dropped_events_total", "counter"),
    ]:
        assert f"# TYPE {name} {kind}\n" in text, name
    get = registry.get_sample_value
    assert get("gowasm_exporter_up") == 1
    assert get("gowasm_exporter_reconnects_total", {"browser": "b"}) == 2
    assert get("gowasm_exporter_connect_failures_total", {"browser": "b"}) == 2
    assert get("gowasm_exporter_renderer_crashes_total", {"browser": "b"}) == 1
    assert get("gowasm_exporter_page_reloads_total", {"page": "http://app.test/", "reason": "after_exit"}) == 4
    assert get("gowasm_exporter_page_reloads_total", {"page": "http://app.test/", "reason": "crash"}) == 0
    assert get("gowasm_exporter_last_refresh_success", {"browser": "b", "subsystem": "poll"}) == 0
    assert 0.25 <= get("gowasm_exporter_last_refresh_duration_seconds", {"browser": "b", "subsystem": "poll"}) < 5
    assert get("gowasm_exporter_dropped_events_total", {"reason": "history_full"}) == 0
    assert get("gowasm_exporter_dropped_events_total", {"reason": "shim_undelivered"}) == 0

"""The collectors, on a fresh registry per test, read with client_python's get_sample_value."""

from __future__ import annotations

from prometheus_client import generate_latest

from gowasm_exporter.cli import build_registry
from gowasm_exporter.schema import InstanceSnapshot, Snapshot
from gowasm_exporter.state import ExporterState, PageMetrics

MODULE = "http://app.test/main.wasm"


def test_instances_are_summed_per_label_set_and_vanish_when_gone() -> None:
    """Two tabs of one page sum their gauges; a closed tab's gauges go, its counters stay."""
    state = ExporterState()
    state.browser_connected("b", None)
    registry = build_registry(state)
    for target, refs in (("T1", 10), ("T2", 32)):
        state.add_target("b", target, "page", "http://app.test/", early=True)
        item = InstanceSnapshot(1, "early", MODULE, 4, 1, 0, False, None, refs, 1 << 20)
        state.apply_snapshot("b", target, Snapshot("d-" + target, (item,), (), 0))
        state.set_page_metrics("b", target, PageMetrics(dom_nodes=5.0))
    labels = {"page": "http://app.test/", "module": "/main.wasm"}
    assert registry.get_sample_value("gowasm_js_refs_live", labels) == 42
    assert registry.get_sample_value("gowasm_memory_bytes", labels) == 2 << 20
    assert registry.get_sample_value("gowasm_instances", labels) == 2
    assert registry.get_sample_value("gowasm_funcs_created_total", labels) == 8
    assert registry.get_sample_value("gowasm_page_dom_nodes", {"page": "http://app.test/"}) == 10
    assert registry.get_sample_value("gowasm_exporter_targets", {"browser": "b", "type": "page"}) == 2

    state.remove_target("b", "T1")
    state.remove_target("b", "T2")
    assert registry.get_sample_value("gowasm_instances", labels) is None
    assert registry.get_sample_value("gowasm_page_dom_nodes", {"page": "http://app.test/"}) is None
    assert registry.get_sample_value("gowasm_funcs_created_total", labels) == 8


def test_exposition_has_the_contract_names() -> None:
    """Every metric of the README's table is exposed with its type."""
    state = ExporterState()
    state.browser_connected("b", None)
    text = generate_latest(build_registry(state)).decode()
    for name, kind in [
        ("gowasm_funcs_created_total", "counter"),
        ("gowasm_func_calls_total", "counter"),
        ("gowasm_calls_after_exit_total", "counter"),
        ("gowasm_js_refs_live", "gauge"),
        ("gowasm_memory_bytes", "gauge"),
        ("gowasm_instances", "gauge"),
        ("gowasm_panics_total", "counter"),
        ("gowasm_exits_total", "counter"),
        ("gowasm_page_js_heap_used_bytes", "gauge"),
        ("gowasm_page_js_heap_total_bytes", "gauge"),
        ("gowasm_page_dom_nodes", "gauge"),
        ("gowasm_page_js_event_listeners", "gauge"),
        ("gowasm_exporter_browser_up", "gauge"),
        ("gowasm_exporter_targets", "gauge"),
    ]:
        assert f"# TYPE {name} {kind}\n" in text
    assert 'gowasm_exporter_browser_up{browser="b"} 1.0' in text

"""The model across a reconnect, and its bounds against a page that invents instances."""

from __future__ import annotations

from gowasm_exporter.schema import DocumentFlush, InstanceSnapshot, InstanceStart, Snapshot
from gowasm_exporter.state import (
    MAX_DETACHED_TARGETS,
    MAX_INSTANCES_PER_TARGET,
    MAX_RETIRED_INSTANCES_PER_TARGET,
    ExporterState,
)

PAGE = "http://app.test/index.html"
MODULE = "http://app.test/main.wasm"
LABELS = (PAGE, "/main.wasm")


def reading(created: int, iid: int = 1) -> Snapshot:
    item = InstanceSnapshot(iid, "early", MODULE, created, created, 0, False, None, 10, 1 << 20)
    return Snapshot("d1", (item,), (), 0)


def connected() -> ExporterState:
    state = ExporterState()
    state.browser_connected("b", "Chrome")
    state.add_target("b", "T", "page", PAGE, early=True)
    return state


def test_a_reattached_instance_continues_from_its_last_reading() -> None:
    """The shim's counters survive in the page across a reconnect: they are not counted twice."""
    state = connected()
    state.apply_snapshot("b", "T", reading(5))
    state.browser_disconnected("b")
    assert state.running_instances() == []
    state.browser_connected("b", "Chrome")
    state.add_target("b", "T", "page", PAGE, early=False)  # re-attached late
    state.apply_snapshot("b", "T", reading(12))  # 7 more made while nobody watched
    assert state.counters[LABELS].funcs_created == 12
    assert state.counters[LABELS].func_calls == 12
    assert len(state.running_instances()) == 1


def test_targets_gone_during_the_gap_are_forgotten_and_the_rest_bounded() -> None:
    """Only targets still listed by the new connection are kept; the kept set is bounded."""
    state = connected()
    state.add_target("b", "U", "page", PAGE, early=True)
    state.browser_disconnected("b")
    state.forget_detached("b", alive={"U"})
    assert set(state.browsers["b"].detached) == {"U"}
    for n in range(MAX_DETACHED_TARGETS + 10):
        state.add_target("b", f"X{n}", "page", PAGE, early=True)
    state.browser_disconnected("b")
    assert len(state.browsers["b"].detached) == MAX_DETACHED_TARGETS


def test_a_new_browser_behind_the_same_endpoint_counts_from_zero() -> None:
    """A restarted browser has new target ids: its instances are new, counted in full, once."""
    state = connected()
    state.apply_snapshot("b", "T", reading(5))
    state.browser_disconnected("b")
    state.browser_connected("b", "Chrome")
    state.forget_detached("b", alive=set())
    state.add_target("b", "T2", "page", PAGE, early=True)
    state.apply_snapshot("b", "T2", Snapshot("d9", reading(5).instances, (), 0))
    assert state.counters[LABELS].funcs_created == 10


def test_invented_instances_are_bounded_per_target() -> None:
    """A page naming endless iids keeps at most the bounds in memory; the excess is rejected."""
    state = connected()
    for iid in range(1, 1000):
        state.apply_event("b", "T", InstanceStart("fake", iid, "early", None))
    target = state.target("b", "T")
    assert target is not None
    assert len(target.instances) == MAX_INSTANCES_PER_TARGET
    assert state.rejected_events["too_many_instances"] == 999 - MAX_INSTANCES_PER_TARGET
    for round_ in range(5):
        for iid in range(1, 300):
            state.apply_event("b", "T", InstanceStart(f"fake-{round_}", iid, "early", None))
        state.apply_snapshot("b", "T", Snapshot("real", (), (), 0))
    assert len(target.instances) == 0
    assert len(target.retired) == MAX_RETIRED_INSTANCES_PER_TARGET


def test_a_poll_answered_after_the_start_event_loses_nothing() -> None:
    """A snapshot taken just before an instance started but processed after its start (and even its
    final flush) lists no instance: the instance is neither counted twice when listed again nor
    left without its end when the page reloads (the sequence the soak caught under load)."""
    d2 = Snapshot("d2", (InstanceSnapshot(1, "early", MODULE, 9, 0, 0, False, None, 10, 1 << 20),), (), 0)
    state = connected()
    state.apply_snapshot("b", "T", reading(0))  # d1 runs
    state.apply_event("b", "T", InstanceStart("d2", 1, "early", MODULE))  # reloaded: d2 started
    state.apply_snapshot("b", "T", d2)
    state.apply_snapshot("b", "T", Snapshot("d2", (), (), 0))  # the late answer
    state.apply_snapshot("b", "T", d2)  # listed again
    state.apply_event("b", "T", DocumentFlush(d2))
    state.apply_snapshot("b", "T", Snapshot("d2", (), (), 0))  # late again, after the flush
    state.apply_event("b", "T", InstanceStart("d3", 1, "early", MODULE))  # reloaded again
    assert state.counters[LABELS].funcs_created == 9
    assert [(end.doc, end.kind) for end in state.ends] == [("d2", "unload"), ("d1", "unload")]


def test_a_pushed_snapshot_counts_like_a_poll() -> None:
    """Push mode: a live snapshot advances the counters, the poll count and the current document
    (ending the previous document's running instance) exactly as a poll does."""
    state = connected()
    state.apply_snapshot("b", "T", reading(0))
    target = state.target("b", "T")
    assert target is not None
    polls = target.polls
    d2 = Snapshot("d2", (InstanceSnapshot(1, "early", MODULE, 9, 0, 0, False, None, 10, 1 << 20),), (), 0)
    state.apply_event("b", "T", DocumentFlush(d2, live=True))
    assert (target.current_doc, target.polls) == ("d2", polls + 1)
    assert state.counters[LABELS].funcs_created == 9
    assert [end.kind for end in state.ends] == ["unload"]  # d1 ended when d2 took over

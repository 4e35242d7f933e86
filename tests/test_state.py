"""The model's counting rules, driven with plain values."""

from __future__ import annotations

from gowasm_exporter.schema import DocumentFlush, InstanceExit, InstanceSnapshot, InstanceStart, Snapshot
from gowasm_exporter.state import ExporterState

PAGE = "http://app.test/index.html"
MODULE = "http://app.test/main.wasm"
LABELS = ("http://app.test/index.html", "/main.wasm")


def inst(
    iid: int = 1,
    *,
    created: int = 0,
    calls: int = 0,
    after: int = 0,
    exited: bool = False,
    code: int | None = None,
    refs: int | None = 10,
    memory: int | None = 1 << 20,
) -> InstanceSnapshot:
    return InstanceSnapshot(iid, "early", MODULE, created, calls, after, exited, code, refs, memory)


def snap(doc: str, *items: InstanceSnapshot) -> Snapshot:
    return Snapshot(doc, items, (), 0)


def new_state() -> ExporterState:
    state = ExporterState(max_label_values=3)
    state.browser_connected("b", "Chrome")
    state.add_target("b", "T", "page", PAGE + "?session=secret#x", early=True)
    return state


def test_readings_become_deltas() -> None:
    """Cumulative per-instance readings add up once, however often they are read."""
    state = new_state()
    for reading in (inst(created=5, calls=1), inst(created=5, calls=1), inst(created=9, calls=4)):
        state.apply_snapshot("b", "T", snap("d1", reading))
    counters = state.counters[LABELS]
    assert (counters.funcs_created, counters.func_calls) == (9, 4)


def test_a_reading_that_goes_backwards_counts_nothing() -> None:
    """A page that lies with a lower reading cannot make counters decrease or double."""
    state = new_state()
    state.apply_snapshot("b", "T", snap("d1", inst(created=9)))
    state.apply_snapshot("b", "T", snap("d1", inst(created=2)))
    state.apply_snapshot("b", "T", snap("d1", inst(created=10)))
    assert state.counters[LABELS].funcs_created == 10


def test_counters_accumulate_across_documents_and_late_flushes() -> None:
    """A reload's new instance adds to the same counters; the old document's final push still counts."""
    state = new_state()
    state.apply_snapshot("b", "T", snap("d1", inst(created=5)))
    state.apply_snapshot("b", "T", snap("d2", inst(created=3)))  # reload happened
    state.apply_event("b", "T", DocumentFlush(snap("d1", inst(created=7))))  # d1's flush came late
    assert state.counters[LABELS].funcs_created == 5 + 3 + 2
    assert [i.doc for i in state.running_instances()] == ["d2"]


def test_exit_is_counted_once_and_panics_are_recorded() -> None:
    """An exit event counts one exit and one panic, even when repeated."""
    state = new_state()
    state.apply_event("b", "T", InstanceStart("d1", 1, "early", MODULE))
    exit_event = InstanceExit(
        "d1",
        1,
        2,
        "panic: boom\n\ngoroutine 1 [running]:\nmain.main()\n\t/a.go:3 +0x1\n",
        False,
        inst(created=4, exited=True, code=2),
    )
    record = state.apply_event("b", "T", exit_event)
    assert state.apply_event("b", "T", exit_event) is None
    assert record is not None and record.message == "boom" and record.top_function == "main.main"
    assert state.exits[(*LABELS, "2")] == 1
    assert state.panics[(*LABELS, "panic")] == 1
    assert state.counters[LABELS].funcs_created == 4
    assert state.running_instances() == []
    assert list(state.ends) == [record]


def test_labels_are_normalised_and_capped() -> None:
    """Query and fragment never reach a label; distinct values beyond the cap fold into 'other'."""
    state = new_state()
    for n in range(5):
        state.add_target("b", f"T{n}", "page", f"http://app.test/p{n}", early=True)
        state.apply_snapshot("b", f"T{n}", snap("d", inst()))
    pages = sorted({labels[0] for labels in state.counters})
    assert pages == ["http://app.test/p0", "http://app.test/p1", "http://app.test/p2", "other"]


def test_disconnect_drops_targets_keeps_counters() -> None:
    state = new_state()
    state.apply_snapshot("b", "T", snap("d1", inst(created=2)))
    state.browser_disconnected("b")
    assert state.running_instances() == []
    assert state.counters[LABELS].funcs_created == 2

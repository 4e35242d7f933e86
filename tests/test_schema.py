"""Shim payloads are untrusted: what parses, and what is rejected with a reason."""

from __future__ import annotations

import json

import pytest

from gowasm_exporter.schema import (
    MAX_PAYLOAD_BYTES,
    MAX_TRACE_CHARS,
    DocumentFlush,
    InstanceExit,
    InstanceStart,
    PayloadError,
    parse_event,
    parse_snapshot,
)


def instance(**overrides: object) -> dict[str, object]:
    base = {
        "iid": 1,
        "mode": "early",
        "module": "http://h/a.wasm",
        "started": 0,
        "created": 3,
        "calls": 4,
        "afterExit": 0,
        "exited": False,
        "code": None,
        "refs": 12,
        "memory": 65536,
    }
    return {**base, **overrides}


def snapshot(**overrides: object) -> dict[str, object]:
    return {"v": 1, "doc": "d1", "instances": [instance()], "missing": [], "errors": 0, **overrides}


def event(**fields: object) -> str:
    return json.dumps({"v": 1, "doc": "d1", "t": 0, **fields})


def test_events_parse() -> None:
    """The three event types the shim sends."""
    assert parse_event(event(type="instance_start", iid=2, mode="late", module=None)) == InstanceStart(
        "d1", 2, "late", None
    )
    exit_event = parse_event(
        event(type="exit", iid=1, code=2, stderr="panic: x\n", stderrTruncated=False, instance=instance())
    )
    assert isinstance(exit_event, InstanceExit)
    assert (exit_event.code, exit_event.stderr, exit_event.instance.funcs_created) == (2, "panic: x\n", 3)
    flush = parse_event(event(type="snapshot", snapshot=snapshot()))
    assert isinstance(flush, DocumentFlush)
    assert flush.snapshot.instances[0].refs == 12
    assert flush.live is False  # a document's last word
    pushed = parse_event(event(type="snapshot", snapshot=snapshot(), live=True))
    assert isinstance(pushed, DocumentFlush) and pushed.live is True  # push mode
    assert parse_event(event(type="snapshot", snapshot=snapshot(), live="yes")).live is False  # only true is true


def test_long_panic_text_is_truncated_not_rejected() -> None:
    """A trace beyond the bound keeps its head and says it was truncated."""
    text = "panic: " + "x" * (MAX_TRACE_CHARS + 10)
    parsed = parse_event(event(type="exit", iid=1, code=2, stderr=text, instance=None))
    assert isinstance(parsed, InstanceExit)
    assert len(parsed.stderr) == MAX_TRACE_CHARS
    assert parsed.stderr_truncated is True


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("x" * (MAX_PAYLOAD_BYTES + 1), "exceeds"),
        ("{not json", "not JSON"),
        ("[]", "not an object"),
        (json.dumps({"v": 2, "type": "exit"}), "version"),
        (event(type="nope", iid=1), "unknown event type"),
        (event(type="instance_start", iid=0, mode="early"), "iid"),
        (event(type="instance_start", iid=True, mode="early"), "iid"),
        (event(type="instance_start", iid=1, mode="sideways"), "mode"),
        (json.dumps({"v": 1, "type": "instance_start", "doc": "d" * 65, "iid": 1, "mode": "early"}), "doc"),
        (event(type="exit", iid=1, code="2", stderr=""), "code"),
        (event(type="exit", iid=1, code=2, stderr=["a"]), "stderr"),
        (event(type="snapshot", snapshot=snapshot(doc="other")), "another document"),
    ],
)
def test_bad_events_are_rejected_with_a_reason(payload: str, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        parse_event(payload)


@pytest.mark.parametrize(
    ("snap", "reason"),
    [
        (None, "not an object"),
        (snapshot(instances={}), "not a list"),
        (snapshot(instances=[instance()] * 2), "twice"),
        (snapshot(instances=[instance(created=-1)]), "created"),
        (snapshot(instances=[instance(calls=1.5)]), "calls"),
        (snapshot(instances=[instance(refs=2**60)]), "refs"),
        (snapshot(instances=[instance(exited="no")]), "exited"),
        (snapshot(instances=[instance(iid=i) for i in range(1, 300)]), "more than"),
        (snapshot(missing=["x"] * 40), "missing"),
    ],
)
def test_bad_snapshots_are_rejected(snap: object, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        parse_snapshot(snap)

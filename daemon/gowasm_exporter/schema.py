"""Validation of everything the shim sends: binding events and polled snapshots.

The page controls these bytes (any script can call the binding or replace the shim's API), so
nothing reaches the state before it is parsed here: sizes capped, types checked, strings bounded.
A payload that does not fit is rejected whole with a :class:`PayloadError` saying why; the caller
counts it and moves on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_PAYLOAD_BYTES = 256 * 1024
MAX_TRACE_CHARS = 64 * 1024
MAX_URL_CHARS = 2048
MAX_INSTANCES = 256
MAX_COUNT = 2**53  # JS numbers are exact integers up to here
SHIM_VERSION = 1


class PayloadError(ValueError):
    """A shim payload that does not match the schema."""


@dataclass(frozen=True, slots=True)
class InstanceSnapshot:
    """One Go instance as the shim sees it at one moment."""

    iid: int
    mode: str
    module: str | None
    funcs_created: int
    func_calls: int
    calls_after_exit: int
    exited: bool
    exit_code: int | None
    refs: int | None
    memory_bytes: int | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    doc: str
    instances: tuple[InstanceSnapshot, ...]
    missing_hooks: tuple[str, ...]
    shim_errors: int


@dataclass(frozen=True, slots=True)
class InstanceStart:
    doc: str
    iid: int
    mode: str
    module: str | None


@dataclass(frozen=True, slots=True)
class InstanceExit:
    doc: str
    iid: int
    code: int | None
    stderr: str
    stderr_truncated: bool
    instance: InstanceSnapshot | None


@dataclass(frozen=True, slots=True)
class DocumentFlush:
    """The final snapshot a document pushes when it goes away (``pagehide``)."""

    snapshot: Snapshot


ShimEvent = InstanceStart | InstanceExit | DocumentFlush


def parse_event(payload: str) -> ShimEvent:
    """Parse one binding payload (a JSON string) into an event."""
    if not isinstance(payload, str):
        raise PayloadError("payload is not a string")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"payload of {len(payload)} characters exceeds {MAX_PAYLOAD_BYTES}")
    try:
        data = json.loads(payload)
    except ValueError as exc:
        raise PayloadError(f"payload is not JSON: {exc}") from None
    obj = _object(data, "payload")
    if obj.get("v") != SHIM_VERSION:
        raise PayloadError(f"unknown payload version {obj.get('v')!r}")
    kind = obj.get("type")
    doc = _doc(obj.get("doc"))
    if kind == "instance_start":
        return InstanceStart(doc, _iid(obj.get("iid")), _mode(obj.get("mode")), _optional_url(obj.get("module")))
    if kind == "exit":
        instance = obj.get("instance")
        return InstanceExit(
            doc=doc,
            iid=_iid(obj.get("iid")),
            code=_optional_int(obj.get("code"), "code", -(2**31), 2**31),
            stderr=_text(obj.get("stderr", ""), "stderr", MAX_TRACE_CHARS),
            stderr_truncated=bool(obj.get("stderrTruncated")) or len(str(obj.get("stderr", ""))) > MAX_TRACE_CHARS,
            instance=None if instance is None else parse_instance(instance),
        )
    if kind == "snapshot":
        snap = parse_snapshot(obj.get("snapshot"))
        if snap.doc != doc:
            raise PayloadError("snapshot of another document")
        return DocumentFlush(snap)
    raise PayloadError(f"unknown event type {kind!r}")


def parse_snapshot(data: Any) -> Snapshot:
    """Parse the value returned by the shim's ``snapshot()``."""
    obj = _object(data, "snapshot")
    if obj.get("v") != SHIM_VERSION:
        raise PayloadError(f"unknown snapshot version {obj.get('v')!r}")
    raw = obj.get("instances")
    if not isinstance(raw, list):
        raise PayloadError("snapshot.instances is not a list")
    if len(raw) > MAX_INSTANCES:
        raise PayloadError(f"snapshot lists {len(raw)} instances, more than {MAX_INSTANCES}")
    instances = tuple(parse_instance(item) for item in raw)
    if len({i.iid for i in instances}) != len(instances):
        raise PayloadError("snapshot lists an instance twice")
    missing = obj.get("missing", [])
    if not isinstance(missing, list) or len(missing) > 32:
        raise PayloadError("snapshot.missing is not a short list")
    return Snapshot(
        doc=_doc(obj.get("doc")),
        instances=instances,
        missing_hooks=tuple(_text(m, "missing hook", 64) for m in missing),
        shim_errors=_count(obj.get("errors", 0), "errors"),
    )


def parse_instance(data: Any) -> InstanceSnapshot:
    obj = _object(data, "instance")
    return InstanceSnapshot(
        iid=_iid(obj.get("iid")),
        mode=_mode(obj.get("mode")),
        module=_optional_url(obj.get("module")),
        funcs_created=_count(obj.get("created"), "created"),
        func_calls=_count(obj.get("calls"), "calls"),
        calls_after_exit=_count(obj.get("afterExit"), "afterExit"),
        exited=_bool(obj.get("exited"), "exited"),
        exit_code=_optional_int(obj.get("code"), "code", -(2**31), 2**31),
        refs=_optional_int(obj.get("refs"), "refs", 0, MAX_COUNT),
        memory_bytes=_optional_int(obj.get("memory"), "memory", 0, 2**64),
    )


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{what} is not an object")
    return value


def _doc(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        raise PayloadError("doc is not a short string")
    return value


def _iid(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < MAX_COUNT:
        raise PayloadError(f"iid {value!r} is not a positive integer")
    return value


def _mode(value: Any) -> str:
    if value not in ("early", "late"):
        raise PayloadError(f"mode {value!r} is neither 'early' nor 'late'")
    return value


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise PayloadError(f"{what} {value!r} is not a count")
    return value


def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise PayloadError(f"{what} is not a boolean")
    return value


def _optional_int(value: Any, what: str, lo: int, hi: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise PayloadError(f"{what} {value!r} is out of range")
    return value


def _optional_url(value: Any) -> str | None:
    if value is None:
        return None
    return _text(value, "module URL", MAX_URL_CHARS)


def _text(value: Any, what: str, limit: int) -> str:
    """A string, truncated to ``limit`` characters (text is kept, not rejected, when too long)."""
    if not isinstance(value, str):
        raise PayloadError(f"{what} is not a string")
    return value[:limit]

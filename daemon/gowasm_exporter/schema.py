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
MAX_STACK_CHARS = 8192
MAX_NAME_CHARS = 200
SHIM_VERSION = 1
# Upper bounds (seconds) of the shim's callback duration buckets (instrument/src/timing.js);
# the shim sends one count per bound plus one for +Inf.
DURATION_BOUNDS = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
ENTRY_KINDS = ("run", "callback", "timer", "export", "unknown")
FLAVOURS = ("go", "tinygo")
ACCOUNTING_MODES = ("exact", "late_attach", "stripped", "unsupported")
MAX_SITES = 50
REGISTRATION_KINDS = ("listener", "setTimeout", "setInterval")


class PayloadError(ValueError):
    """A shim payload that does not match the schema."""


@dataclass(frozen=True, slots=True)
class CallDurations:
    """Per-bucket (not cumulative) counts of callback durations, their sum, and long calls."""

    buckets: tuple[int, ...]
    sum: float
    long: int


@dataclass(frozen=True, slots=True)
class ExitCause:
    """What the instance was executing when it ended (shim attribution.js)."""

    entry: str  # "run" (inside go.run: start-up or main returning), "callback", "timer", "export", "unknown"
    func_id: int | None = None
    func_name: str | None = None  # the global name the func was exported under, if any
    registered_as: str | None = None  # "listener", "setTimeout", "setInterval"
    registered_type: str | None = None  # the listener's event type
    registered_target: str | None = None  # the listener's target ("button#save")
    event_type: str | None = None  # the DOM Event the callback received
    event_target: str | None = None
    js_stack: str | None = None


@dataclass(frozen=True, slots=True)
class FuncSite:
    """The live funcs one Go function created (the caller of js.FuncOf)."""

    site: str
    live: int
    created: int
    released: int
    oldest_age_seconds: float | None


@dataclass(frozen=True, slots=True)
class ProbeReadings:
    """Load-time probe counters of an instance; None where the module has no such probe."""

    goroutines: int | None
    gc_cycles: int | None
    recovered_panics: int | None


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
    durations: CallDurations | None = None
    accounting: str = "late_attach"  # how exactly Release is counted: ACCOUNTING_MODES
    flavour: str = "go"  # "go", or "tinygo" (reported with what can be observed)
    funcs_released: int | None = None  # None unless accounting is "exact"
    calls_after_release: int = 0
    probes: ProbeReadings | None = None
    sites: tuple[FuncSite, ...] = ()


@dataclass(frozen=True, slots=True)
class Snapshot:
    doc: str
    instances: tuple[InstanceSnapshot, ...]
    missing_hooks: tuple[str, ...]
    shim_errors: int
    events_failed: int = 0  # events the shim could not hand to the binding
    bound: bool = True  # False: the page has no binding (yet); the shim holds its events


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
    cause: ExitCause | None = None


@dataclass(frozen=True, slots=True)
class LateCall:
    """A call into an instance that had exited (the first few are reported with their stack)."""

    doc: str
    iid: int
    func_id: int | None
    func_name: str | None
    js_stack: str | None
    count: int


@dataclass(frozen=True, slots=True)
class DocumentFlush:
    """A snapshot the document pushes: its final one when it goes away (``beforeunload``), or,
    in push mode (``live``), one shortly after its Go program changed something."""

    snapshot: Snapshot
    live: bool = False


ShimEvent = InstanceStart | InstanceExit | DocumentFlush | LateCall


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
            cause=None if obj.get("cause") is None else parse_cause(obj.get("cause")),
        )
    if kind == "after_exit":
        return LateCall(
            doc=doc,
            iid=_iid(obj.get("iid")),
            func_id=_optional_int(obj.get("funcId"), "funcId", 0, MAX_COUNT),
            func_name=_optional_text(obj.get("funcName"), "funcName", MAX_NAME_CHARS),
            js_stack=_optional_text(obj.get("jsStack"), "jsStack", MAX_STACK_CHARS),
            count=_count(obj.get("count"), "count"),
        )
    if kind == "snapshot":
        snap = parse_snapshot(obj.get("snapshot"))
        if snap.doc != doc:
            raise PayloadError("snapshot of another document")
        return DocumentFlush(snap, live=obj.get("live") is True)
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
        events_failed=_count(obj.get("eventsFailed", 0), "eventsFailed"),
        bound=obj.get("bound", True) is not False,
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
        durations=None if obj.get("durations") is None else parse_durations(obj.get("durations")),
        accounting=_accounting(obj.get("accounting", "late_attach")),
        flavour=_flavour(obj.get("flavour", "go")),
        funcs_released=_optional_int(obj.get("released"), "released", 0, MAX_COUNT),
        calls_after_release=_count(obj.get("afterRelease", 0), "afterRelease"),
        probes=None if obj.get("probes") is None else parse_probes(obj.get("probes")),
        sites=parse_sites(obj.get("sites", [])),
    )


def parse_probes(data: Any) -> ProbeReadings:
    obj = _object(data, "probes")
    return ProbeReadings(
        goroutines=_optional_int(obj.get("goroutines"), "goroutines", -MAX_COUNT, MAX_COUNT),
        gc_cycles=_optional_int(obj.get("gcCycles"), "gcCycles", 0, MAX_COUNT),
        recovered_panics=_optional_int(obj.get("recoveredPanics"), "recoveredPanics", 0, MAX_COUNT),
    )


def parse_sites(data: Any) -> tuple[FuncSite, ...]:
    if not isinstance(data, list) or len(data) > MAX_SITES:
        raise PayloadError("sites is not a short list")
    sites = []
    for item in data:
        obj = _object(item, "site")
        age = obj.get("oldestAgeMs")
        if age is not None and (isinstance(age, bool) or not isinstance(age, (int, float)) or not 0 <= age < 1e13):
            raise PayloadError("site oldestAgeMs is not a duration")
        sites.append(
            FuncSite(
                site=_text(obj.get("site"), "site", MAX_NAME_CHARS),
                live=_count(obj.get("live"), "site live"),
                created=_count(obj.get("created"), "site created"),
                released=_count(obj.get("released"), "site released"),
                oldest_age_seconds=None if age is None else age / 1000,
            )
        )
    return tuple(sites)


def _flavour(value: Any) -> str:
    if value not in FLAVOURS:
        raise PayloadError(f"flavour {value!r} is unknown")
    return value


def _accounting(value: Any) -> str:
    if value not in ACCOUNTING_MODES:
        raise PayloadError(f"accounting {value!r} is unknown")
    return value


def parse_cause(data: Any) -> ExitCause:
    obj = _object(data, "cause")
    entry = obj.get("entry")
    if entry not in ENTRY_KINDS:
        raise PayloadError(f"cause.entry {entry!r} is unknown")
    reg = obj.get("registeredAs")
    registered_as = registered_type = registered_target = None
    if reg is not None:
        reg = _object(reg, "cause.registeredAs")
        if reg.get("as") not in REGISTRATION_KINDS:
            raise PayloadError("cause.registeredAs.as is unknown")
        registered_as = reg["as"]
        registered_type = _optional_text(reg.get("type"), "registeredAs.type", MAX_NAME_CHARS)
        registered_target = _optional_text(reg.get("target"), "registeredAs.target", MAX_NAME_CHARS)
    return ExitCause(
        entry=entry,
        func_id=_optional_int(obj.get("funcId"), "funcId", 0, MAX_COUNT),
        func_name=_optional_text(obj.get("funcName"), "funcName", MAX_NAME_CHARS),
        registered_as=registered_as,
        registered_type=registered_type,
        registered_target=registered_target,
        event_type=_optional_text(obj.get("eventType"), "eventType", MAX_NAME_CHARS),
        event_target=_optional_text(obj.get("eventTarget"), "eventTarget", MAX_NAME_CHARS),
        js_stack=_optional_text(obj.get("jsStack"), "jsStack", MAX_STACK_CHARS),
    )


def parse_durations(data: Any) -> CallDurations:
    obj = _object(data, "durations")
    buckets = obj.get("buckets")
    if not isinstance(buckets, list) or len(buckets) != len(DURATION_BOUNDS) + 1:
        raise PayloadError("durations.buckets has the wrong length")
    total = obj.get("sum")
    if isinstance(total, bool) or not isinstance(total, (int, float)) or not 0 <= total < 1e12:
        raise PayloadError("durations.sum is not a duration")
    # One pass without a call per bucket (every poll of every page validates 20 of them);
    # ``type(b) is int`` also refuses booleans.
    if not all(type(b) is int and 0 <= b <= MAX_COUNT for b in buckets):
        raise PayloadError("a durations bucket is not a count")
    return CallDurations(
        buckets=tuple(buckets),
        sum=float(total),
        long=_count(obj.get("long"), "durations.long"),
    )


def _optional_text(value: Any, what: str, limit: int) -> str | None:
    return None if value is None else _text(value, what, limit)


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

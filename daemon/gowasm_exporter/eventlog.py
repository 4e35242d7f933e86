"""The structured event log: one JSON object per line for every end of a Go instance.

Log pipelines (Loki, Elasticsearch, ...) index these fields directly; the line carries no prefix.
It goes to its own logger, ``gowasm_exporter.events``, so it can be routed apart from the
daemon's human-readable log.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

from .state import InstanceEnd

logger = logging.getLogger("gowasm_exporter.events")

TRACE_HEAD_LINES = 24
# The trace is page-controlled text: a "panic" of one 64 KiB line would make every line of the
# log that long. Lines stay below what log pipelines accept (Loki's default is 256 KB).
TRACE_HEAD_CHARS = 4096
LEVELS = {"panic": logging.ERROR, "fatal": logging.ERROR, "crash": logging.ERROR, "unload": logging.INFO}


def configure(stream: TextIO = sys.stderr) -> None:
    """Write the event log as bare JSON lines to ``stream``."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)


def end_fields(end: InstanceEnd) -> dict[str, Any]:
    cause = end.cause
    return {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(end.time)) + f".{int(end.time % 1 * 1000):03d}Z",
        "event": "gowasm_instance_end",
        "kind": end.kind,
        "page": end.page,
        "module": end.module,
        "browser": end.browser,
        "target_id": end.target_id,
        "iid": end.iid,
        "message": end.message[:1024],
        "value": None if end.value is None else end.value[:1024],
        "exit_code": end.exit_code,
        "goroutine": end.goroutine,
        "top_function": end.top_function,
        "top_location": end.top_location,
        "entry": None if cause is None else cause.entry,
        "func_id": None if cause is None else cause.func_id,
        "func_name": None if cause is None else cause.func_name,
        "registered_as": None if cause is None else cause.registered_as,
        "event_type": None if cause is None else cause.event_type,
        "trace_head": "\n".join(end.trace.split("\n")[:TRACE_HEAD_LINES])[:TRACE_HEAD_CHARS] or None,
    }


def log_end(end: InstanceEnd) -> None:
    level = LEVELS.get(end.kind, logging.WARNING if end.exit_code else logging.INFO)
    logger.log(level, json.dumps(end_fields(end), ensure_ascii=False))

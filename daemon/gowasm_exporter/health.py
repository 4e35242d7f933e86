"""The daemon's own health: connections, refreshes, recoveries and drops. No I/O.

Kept apart from :mod:`state` (the model of the watched Go programs) because it describes the
monitor, not the monitored: ``ExporterCollector`` turns it into the ``gowasm_exporter_*``
self-metrics that tell an operator whether the numbers can be trusted right now (is the
browser reachable, are polls succeeding, did the monitor have to restore a page, did it drop
anything).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass

# Subsystems whose last refresh is reported: one connection attempt to a browser, one
# application heartbeat on an open connection, one poll of one page.
SUBSYSTEMS = ("connect", "heartbeat", "poll")
# Why a kept-open page (--open) was restored: it was closed (reopened in a new tab), its
# renderer crashed (the tab reloaded), or its Go program had exited (--reload-after-exit).
RESTORE_REASONS = ("closed", "crash", "after_exit")
# Why events were dropped by a bounded queue: the shim's own queue (events it could not hand to
# the binding), and the bounded history of instance ends behind /api/panics.
DROP_REASONS = ("shim_undelivered", "history_full")


@dataclass(slots=True)
class Refresh:
    """The outcome of the last refresh of one subsystem of one browser."""

    duration_seconds: float
    success: bool
    timestamp: float  # wall clock, when it finished


class ExporterHealth:
    def __init__(self) -> None:
        self.refreshes: dict[tuple[str, str], Refresh] = {}  # (browser, subsystem) -> last one
        self.connections: Counter[str] = Counter()  # successful connections, per browser
        self.connect_failures: Counter[str] = Counter()  # attempts that did not connect
        self.renderer_crashes: Counter[str] = Counter()  # every Target.targetCrashed, watched or not
        self.page_restores: Counter[tuple[str, str]] = Counter()  # (page label, reason)
        self.dropped_events: Counter[str] = Counter()  # reason -> count
        self.ends_recorded = 0  # instance ends handed to the bounded history
        # (browser, target id) -> (document, the shim's undelivered-events count last seen): the
        # shim counts per document; this turns it into a counter that survives reconnects.
        self.shim_drops_seen: dict[tuple[str, str], tuple[str | None, int]] = {}

    def keep_open(self, pages: Iterable[str]) -> None:
        """Start the restore counters of kept-open pages at 0, so that the first one is an increase."""
        for page in pages:
            for reason in RESTORE_REASONS:
                self.page_restores[(page, reason)] += 0

    def refreshed(self, browser: str, subsystem: str, started: float, success: bool) -> None:
        """Record one refresh; ``started`` is its ``time.monotonic()`` start."""
        self.refreshes[(browser, subsystem)] = Refresh(time.monotonic() - started, success, time.time())

    def reconnects(self, browser: str) -> int:
        """Connections after the first one: how often the browser had to be found again."""
        return max(0, self.connections[browser] - 1)

    def forget_targets(self, browser: str, alive: Collection[str]) -> None:
        """Drop what is kept per target for the targets of ``browser`` that are gone."""
        for key in [k for k in self.shim_drops_seen if k[0] == browser and k[1] not in alive]:
            del self.shim_drops_seen[key]

    def end_recorded(self, history_limit: int | None) -> None:
        """An instance end went into the bounded history (``state.ends``, a deque that nothing
        else shrinks): once more ends were recorded than it holds, each one pushes one out."""
        self.ends_recorded += 1
        if history_limit is not None and self.ends_recorded > history_limit:
            self.dropped_events["history_full"] += 1

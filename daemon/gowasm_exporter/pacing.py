"""When to poll pages: every ``--poll-interval``, or just before Prometheus scrapes.

Polling every page every second keeps every number a second fresh, but Prometheus reads them
only once per scrape interval (15 s by default), so most polls are never read. With
``--poll-on-scrape`` the exporter learns the scrape period from the ``/metrics`` requests it
serves and polls each page once per period, ``lead`` seconds before the next scrape is due: the
scrape then sees numbers about ``lead`` old, as fresh as a one-second poller's, for one poll per
page per scrape instead of one per second (docs/performance.md, section 5). Events (panics,
exits, page ends) do not wait for polls: the pages push them.

Until scrapes have been seen, when they come more often than pages would be polled anyway, and
when they stop for a few periods, pages are polled every ``--poll-interval`` as before. With
several scrapers out of phase the period is their median gap, and numbers are at most one period
old at a scrape.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import statistics
import time
from collections.abc import Callable

# Scrapes closer together than this are one scrape (two scrapers, a retry, a person's curl).
MIN_GAP = 0.5
# A poll is due at least this much after the last one, so one late poll cannot run twice.
MIN_SLEEP = 0.05
# Scrapes missing for this many periods: back to polling every --poll-interval.
STALE_PERIODS = 3


class ScrapePacer:
    """The scrape rhythm seen on ``/metrics``, and the delay until each page's next poll."""

    def __init__(self, lead: float = 0.5, history: int = 8, clock: Callable[[], float] = time.monotonic) -> None:
        self.lead = lead
        self._clock = clock
        self._scrapes: collections.deque[float] = collections.deque(maxlen=history + 1)

    def scraped(self) -> None:
        """Called for every ``/metrics`` request."""
        now = self._clock()
        if self._scrapes and now - self._scrapes[-1] < MIN_GAP:
            return
        self._scrapes.append(now)

    def period(self) -> float | None:
        """The scrape period: the median gap between recent scrapes (None before three scrapes)."""
        if len(self._scrapes) < 3:
            return None
        return statistics.median(b - a for a, b in itertools.pairwise(self._scrapes))

    def delay(self, interval: float) -> float:
        """Seconds until the next poll of a page, ``interval`` being the usual poll interval."""
        period = self.period()
        now = self._clock()
        if period is None or period <= 2 * interval or now - self._scrapes[-1] > STALE_PERIODS * period:
            return interval
        lead = min(self.lead, period / 4)
        due = self._scrapes[-1] + period - lead
        while due < now + MIN_SLEEP:
            due += period
        return due - now


class PollTicker:
    """One timer for the next poll of every target of a browser, so that they all poll together.

    Each target's loop used to sleep its own delay after its own poll: with N pages, N timers, N
    wake-ups of the event loop and 2N separate socket writes per interval, since the commands of
    polls that start in different turns of the loop never meet in one write of
    ``CoalescingTransport`` (``bench/profile_daemon.py``: the socket writes and ``epoll`` were two
    fifths of the daemon's samples at 100 pages). Now a target that finished its poll waits
    for the next tick; the first to wait arms it ``delay()`` from then, and all waiting targets
    resume in the same turn, so their commands go out in one write and their answers come back
    together. A target whose poll outlasts the tick waits for the next one (as before, it is never
    polled twice at once). Each waiter has its own future, so a cancelled target (a closed tab)
    cancels nothing but itself.
    """

    def __init__(self, delay: Callable[[], float]) -> None:
        self._delay = delay
        self._waiters: list[asyncio.Future[None]] = []

    async def wait(self) -> None:
        """Until the next tick."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        if not self._waiters:
            loop.call_later(self._delay(), self._tick)
        self._waiters.append(waiter)
        await waiter

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def _tick(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():  # cancelled meanwhile
                waiter.set_result(None)

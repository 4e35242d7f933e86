"""When pages are polled: the scrape pacer (``--poll-on-scrape``) on a fake clock, and the poll
ticker that makes every page of a browser poll in the same turn of the event loop."""

from __future__ import annotations

import asyncio

import pytest

from gowasm_exporter.pacing import PollTicker, ScrapePacer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def scraped_every(pacer: ScrapePacer, clock: Clock, period: float, times: int) -> None:
    for _ in range(times):
        pacer.scraped()
        clock.now += period
    clock.now -= period  # at the last scrape


def test_before_three_scrapes_pages_are_polled_every_interval() -> None:
    clock = Clock()
    pacer = ScrapePacer(clock=clock)
    assert pacer.delay(1.0) == 1.0
    scraped_every(pacer, clock, 15.0, 2)
    assert pacer.period() is None
    assert pacer.delay(1.0) == 1.0


def test_polls_are_due_lead_seconds_before_the_next_scrape() -> None:
    clock = Clock()
    pacer = ScrapePacer(lead=0.5, clock=clock)
    scraped_every(pacer, clock, 15.0, 4)
    assert pacer.period() == 15.0
    assert pacer.delay(1.0) == pytest.approx(14.5)  # right after a scrape
    clock.now += 10.0
    assert pacer.delay(1.0) == pytest.approx(4.5)
    clock.now += 4.5  # the poll ran; the scrape has not come yet: the next one is a period later
    assert pacer.delay(1.0) == pytest.approx(15.0)


def test_the_period_is_the_median_gap_and_repeated_requests_are_one_scrape() -> None:
    clock = Clock()
    pacer = ScrapePacer(clock=clock)
    for gap in (10.0, 10.0, 0.1, 9.9, 30.0, 10.1):
        pacer.scraped()
        clock.now += gap
    # 0.1 s after a scrape is the same scrape; the 30 s gap (a missed scrape) does not move the median.
    assert pacer.period() == pytest.approx(10.0)


def test_scrapes_as_frequent_as_polls_change_nothing() -> None:
    clock = Clock()
    pacer = ScrapePacer(clock=clock)
    scraped_every(pacer, clock, 1.5, 5)
    assert pacer.delay(1.0) == 1.0


def test_when_scrapes_stop_pages_are_polled_every_interval_again() -> None:
    clock = Clock()
    pacer = ScrapePacer(clock=clock)
    scraped_every(pacer, clock, 15.0, 4)
    clock.now += 3 * 15.0 + 1
    assert pacer.delay(1.0) == 1.0


def test_the_lead_is_at_most_a_quarter_period() -> None:
    clock = Clock()
    pacer = ScrapePacer(lead=5.0, clock=clock)
    scraped_every(pacer, clock, 4.0, 4)
    assert pacer.delay(1.0) == pytest.approx(3.0)


class TickLog:
    """The ticker's delay function, recording each time it is asked (once per armed tick)."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.armed = 0

    def __call__(self) -> float:
        self.armed += 1
        return self.delay


async def test_targets_that_finish_their_polls_at_different_times_resume_together() -> None:
    ticks = TickLog(0.05)
    ticker = PollTicker(ticks)
    resumed: list[tuple[str, int]] = []
    turns = 0

    async def count_turns() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    async def target(name: str, busy_turns: int) -> None:
        for _ in range(busy_turns):  # its poll takes a few turns of the loop
            await asyncio.sleep(0)
        await ticker.wait()
        resumed.append((name, turns))

    counter = asyncio.create_task(count_turns())
    try:
        await asyncio.gather(target("a", 0), target("b", 3), target("c", 7))
    finally:
        counter.cancel()
    assert ticks.armed == 1  # one timer for the three
    assert [name for name, _ in resumed] == ["a", "b", "c"]
    assert len({turn for _, turn in resumed}) == 1  # in the same turn of the loop
    assert ticker.waiting == 0


async def test_a_target_that_comes_after_the_tick_waits_for_the_next_one() -> None:
    ticks = TickLog(0.02)
    ticker = PollTicker(ticks)
    await ticker.wait()
    await ticker.wait()
    assert ticks.armed == 2


async def test_a_cancelled_target_does_not_cancel_the_others() -> None:
    ticks = TickLog(0.02)
    ticker = PollTicker(ticks)
    closed = asyncio.create_task(ticker.wait())
    kept = asyncio.create_task(ticker.wait())
    await asyncio.sleep(0)
    assert ticker.waiting == 2
    closed.cancel()
    await kept  # resumes at the tick all the same
    assert closed.cancelled()
    assert ticks.armed == 1
    assert ticker.waiting == 0

"""The scrape pacer (``--poll-on-scrape``), on a fake clock: when each page's next poll is due."""

from __future__ import annotations

import pytest

from gowasm_exporter.pacing import ScrapePacer


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

"""``--poll-on-scrape`` in real Chromium: pages are polled once per scrape period, just before the
next scrape, and what a page did between two scrapes is in the second one.

The test plays Prometheus: it scrapes ``/metrics`` once a second (the cadence is the scenario, not
a wait for something to happen). ``/api/targets`` is no scrape, so reading a target's poll count
there does not move the rhythm.
"""

from __future__ import annotations

import asyncio
import itertools
import time

from gowasm_demo.server import StaticSite
from gowasm_demo.toolchain import GoToolchain
from special_pages import alias_app
from support import CDPClient, run_exporter

FUNCS = "gowasm_funcs_created_total"
PERIOD = 1.0


async def test_pages_are_polled_once_per_scrape_just_before_it(
    go: GoToolchain, site: StaticSite, chrome: str, client: CDPClient
) -> None:
    app = alias_app(site, go, "ledger", "ledger-scrape")
    labels = {"page": app.url, "module": app.module_path}
    async with run_exporter("--cdp", chrome, "--poll-interval", "0.1", "--poll-on-scrape") as exporter:
        await exporter.wait_for_log("connected")
        page = await client.open_page(app.url)
        try:
            await page.evaluate("window.ledgerReady", await_promise=True)
            # No scrapes yet: polled every --poll-interval.
            first = (await exporter.settled(page.target_id, polls=3))["polls"]

            async def polls() -> int:
                target = await exporter.target(page.target_id)
                assert target is not None
                return int(target["polls"])

            start = time.monotonic()
            counts: list[int] = []
            for n in range(7):
                await asyncio.sleep(max(0.0, start + n * PERIOD - time.monotonic()))
                m = await exporter.metrics()  # scrape n
                counts.append(await polls())
                if n == 5:
                    scraped_funcs = m.get(FUNCS, **labels)
                if n == 4:
                    # Between scrapes 4 and 5 (after this period's poll is due): 0.5 s later.
                    await asyncio.sleep(max(0.0, start + 4.5 * PERIOD - time.monotonic()))
                    await page.evaluate("ledger.makeFuncs(9)")
                    made = await page.evaluate("ledger.stats().funcsCreated")
            assert first >= 3
            # From the third scrape on the period is known: one poll per period, 0.25 s before it.
            assert [b - a for a, b in itertools.pairwise(counts[3:])] == [1, 1, 1]
            # The change 0.5 s before scrape 5 is in scrape 5.
            assert scraped_funcs == made

            # Scrapes stop: after three periods, every --poll-interval again.
            before = await polls()
            await exporter.wait_for_target(page.target_id, lambda t: t["polls"] >= before + 10, timeout=10)
        finally:
            await page.close()
        assert await exporter.stop() == 0

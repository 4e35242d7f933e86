"""Exact Release accounting, runtime probes and leak sites, in real Chromium with an unmodified app.

The truth is the app's own ledger (tests/apps/releases): the funcs it created and released in
every pattern people write, plus one FuncOf/Release pair per fmt.Println of the standard library.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from conftest import app_for
from support import CDPClient, Exporter, Page, run_exporter

POLL = "0.2"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def exporter(chrome: str) -> AsyncIterator[Exporter]:
    async with run_exporter("--cdp", chrome, "--poll-interval", POLL) as running:
        await running.wait_for_log("connected")
        yield running


async def open_releases(client: CDPClient, url: str) -> Page:
    page = await client.open_page(url)
    await page.evaluate("window.releasesReady", await_promise=True)
    return page


async def test_release_accounting_matches_the_apps_ledger(go, site, client, exporter: Exporter) -> None:
    """Created, released, live, calls after release, goroutines, GC cycles, recovered panics: exact."""
    app = app_for(site, go, "releases")
    labels = {"page": app.url, "module": app.module_path}
    page = await open_releases(client, app.url)
    try:
        gc_before = await page.evaluate("releases.ledger().numGC")
        await exporter.settled(page.target_id)
        m0 = await exporter.metrics()
        await page.evaluate("releases.patterns(); releases.leak(50); releases.exportReleased()")
        await page.evaluate("releasedFunc(); releasedFunc(); releasedFunc()")
        await page.evaluate("releases.gc(3); releases.recoverPanics(4)")
        ledger0 = await page.evaluate("releases.ledger()")
        await exporter.settled(page.target_id)
        m1 = await exporter.metrics()
        await page.evaluate("releases.startGoroutines(9)")
        ledger = await page.evaluate("releases.ledger()")
        await exporter.settled(page.target_id)
        m2 = await exporter.metrics()

        created = ledger["created"] + ledger["printlns"]
        released = ledger["released"] + ledger["printlns"]
        assert m2.get("gowasm_funcs_created_total", **labels) == created
        assert m2.get("gowasm_funcs_released_total", **labels) == released
        assert m2.get("gowasm_funcs_live", **labels) == created - released
        assert m2.get("gowasm_calls_after_release_total", **labels) == 3
        assert m2.get("gowasm_recovered_panics_total", **labels) == ledger["recovered"] == 4
        gc_delta = m1.get("gowasm_gc_cycles_total", **labels) - m0.get("gowasm_gc_cycles_total", **labels)
        assert gc_delta == ledger0["numGC"] - gc_before
        assert m2.get("gowasm_goroutines", **labels) - m1.get("gowasm_goroutines", **labels) == 9
        assert m2.get("gowasm_release_accounting", **labels, mode="exact") == 1
        assert m2.get("gowasm_funcs_live_by_site", **labels, site="main.leakForever") == 50

        leaks = (await exporter.json(f"/api/leaks?page={app.url}"))["leaks"]
        assert leaks[0]["site"] == "main.leakForever"
        assert (leaks[0]["live"], leaks[0]["created"], leaks[0]["released"]) == (50, 50, 0)
        assert leaks[0]["oldest_age_seconds"] >= 0
        assert sum(row["live"] for row in leaks) == created - released
        await page.evaluate("releases.stopGoroutines()")
    finally:
        await page.close()


async def test_counts_stay_exact_across_a_reload(go, site, client, exporter: Exporter) -> None:
    """Counters accumulate over both instances; the live gauge is the new instance's."""
    app = app_for(site, go, "releases")
    labels = {"page": app.url, "module": app.module_path}
    page = await open_releases(client, app.url)
    try:
        at_start = await page.evaluate("releases.ledger()")
        await exporter.settled(page.target_id)
        before = await exporter.metrics()
        await page.evaluate("releases.patterns(); releases.leak(5)")
        first = await page.evaluate("releases.ledger()")
        loaded = client.expect(lambda e: e.method == "Page.loadEventFired" and e.session_id == page.session.session_id)
        await page.session.send("Page.reload")
        await loaded
        await page.evaluate("window.releasesReady", await_promise=True)
        await page.evaluate("releases.leak(2)")
        second = await page.evaluate("releases.ledger()")
        await exporter.settled(page.target_id)
        after = await exporter.metrics()

        def delta(name: str) -> float:
            return after.get(name, **labels) - before.get(name, **labels)

        created_first = first["created"] + first["printlns"] - at_start["created"]
        assert delta("gowasm_funcs_created_total") == created_first + second["created"] + second["printlns"]
        assert delta("gowasm_funcs_released_total") == (first["released"] + first["printlns"]) + (
            second["released"] + second["printlns"]
        )
        assert after.get("gowasm_funcs_live", **labels) == second["created"] - second["released"]
        assert after.get("gowasm_instances", **labels) == 1
    finally:
        await page.close()

"""The soak: 2,000 reloads of a Go WASM page, the exporter's memory flat and every start counted.

A page that reloads is what an overnight monitor sees most (deploys, ``--reload-after-exit``, users
pressing F5): each reload is a new document, a new Go instance, a retired one, an ``unload`` end in
the bounded history and a final flush through the binding. The exporter's resident memory
(``VmRSS`` of its process) is read after a warm-up of ``WARMUP`` reloads and at the end; it must
grow by less than 5 MB. Every document's start-up funcs must be counted exactly once, and every
end either kept in the history or counted as dropped from it. ``bench/soak.py`` runs the same loop
for longer and prints the machine and the figures; ``docs/reliability.md`` records one run.

``GOWASM_SOAK_RELOADS`` changes the number of reloads (CI runs the default).
"""

from __future__ import annotations

import asyncio
import os

import pytest

from gowasm_demo.server import StaticSite
from gowasm_demo.toolchain import GoToolchain
from special_pages import alias_app
from support import CDPClient, Page, rss_bytes, run_exporter

# Part of every run (CI included); ``-m 'not soak'`` leaves it out of a quick local run. Its exact
# count of ends once failed under heavy load (1,894 of 1,900): a poll answered after an instance's
# start event made the state forget the instance (fixed in state.apply_snapshot, and unit-tested
# in test_reconnect_state.py).
pytestmark = pytest.mark.soak

RELOADS = int(os.environ.get("GOWASM_SOAK_RELOADS", "2000"))
WARMUP = min(200, RELOADS // 10)
MAX_GROWTH = 5 * 1000 * 1000  # bytes: "less than 5 MB"
HISTORY = 100  # the default --panic-history


@pytest.fixture
def newest_go(toolchains: list[GoToolchain]) -> GoToolchain:
    """Memory is the daemon's business, not Go's: one toolchain is enough."""
    return toolchains[-1]


async def reload_and_wait(page: Page) -> None:
    """Reload, and return once the new document's Go program is up."""
    loaded = page.client.expect(lambda e: e.method == "Page.loadEventFired" and e.session_id == page.session.session_id)
    await page.session.send("Page.reload")
    await asyncio.wait_for(loaded, 30)
    await page.evaluate("window.ledgerReady", await_promise=True)


async def test_2000_reloads_keep_the_exporter_memory_flat_and_every_start_counted(
    newest_go: GoToolchain, site: StaticSite, chrome: str, client: CDPClient, record_property: object
) -> None:
    """2,000 reloads: RSS grows by less than 5 MB after the warm-up; funcs and ends counted exactly."""
    app = alias_app(site, newest_go, "ledger", "ledger-soak")
    labels = {"page": app.url, "module": app.module_path}
    async with run_exporter("--cdp", chrome, "--poll-interval", "0.2") as exporter:
        await exporter.wait_for_log("connected")
        page = await client.open_page(app.url)
        try:
            await page.evaluate("window.ledgerReady", await_promise=True)
            start = await page.evaluate("ledger.stats().funcsCreated")
            samples: list[tuple[int, int]] = []
            for n in range(1, RELOADS + 1):
                await reload_and_wait(page)
                if n == WARMUP or n % 250 == 0 or n == RELOADS:
                    samples.append((n, rss_bytes(exporter.proc.pid)))
            await exporter.settled(page.target_id)
            samples.append((RELOADS, rss_bytes(exporter.proc.pid)))
            m = await exporter.metrics()
        finally:
            await page.close()

        warm = dict(samples)[WARMUP]
        end = samples[-1][1]
        report = ", ".join(f"{n}: {rss / 1e6:.2f} MB" for n, rss in samples)
        print(f"\nsoak: {RELOADS} reloads; exporter RSS {report}; growth after warm-up {(end - warm) / 1e6:.2f} MB")
        assert callable(record_property)
        record_property("rss_samples", samples)

        # Every document's start-up funcs, counted once: the first load and each reload.
        assert m.get("gowasm_funcs_created_total", **labels) == start * (RELOADS + 1)
        assert m.get("gowasm_instances", **labels) == 1
        # Every reload ended a running instance ("unload"): kept in the history or counted out of it.
        assert m.get("gowasm_exporter_dropped_events_total", reason="history_full") == RELOADS - HISTORY
        assert m.get("gowasm_exporter_reconnects_total", browser=chrome) == 0
        assert end - warm < MAX_GROWTH, report
        assert await exporter.stop() == 0

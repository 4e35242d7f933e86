"""Push mode (``--push``) in real Chromium: pages send their snapshots themselves after their Go
program changed something, and are polled only every ``--push-poll-interval``.

Here that interval is a minute, longer than the test: after the first poll at attach, every
number the test waits for can only have come from a push.
"""

from __future__ import annotations

from gowasm_demo.server import StaticSite
from gowasm_demo.toolchain import GoToolchain
from special_pages import alias_app
from support import CDPClient, run_exporter, wait_for_metric
from test_frames import Contexts

FUNCS = "gowasm_funcs_created_total"
CALLS = "gowasm_func_calls_total"


async def test_push_mode_counts_exactly_without_polls(
    go: GoToolchain, site: StaticSite, chrome: str, client: CDPClient
) -> None:
    app = alias_app(site, go, "ledger", "ledger-push")
    labels = {"page": app.url, "module": app.module_path}
    args = ("--cdp", chrome, "--poll-interval", "0.2", "--push", "--push-poll-interval", "60")
    async with run_exporter(*args) as exporter:
        await exporter.wait_for_log("connected")
        page = await client.open_page(app.url)
        try:
            await page.evaluate("window.ledgerReady", await_promise=True)
            start = await page.evaluate("ledger.stats().funcsCreated")
            calls = 1
            for n in (6, 1, 30):
                await page.evaluate(f"ledger.makeFuncs({n}); ledger.noop(); ledger.noop()")
                calls += 3
                funcs = await page.evaluate("ledger.stats().funcsCreated")
                calls += 1
                await wait_for_metric(
                    exporter, lambda m, f=funcs, c=calls: (m.get(FUNCS, **labels), m.get(CALLS, **labels)) == (f, c)
                )
            assert funcs == start + 37
            target = await exporter.target(page.target_id)
            assert target is not None
            [instance] = target["instances"]
            assert (instance["funcs_created"], instance["func_calls"], instance["instrumented"]) == (
                funcs,
                calls,
                "early",
            )

            assert await page.evaluate("ledger.panic('pushed')") is None
            m = await wait_for_metric(exporter, lambda m: m.get("gowasm_panics_total", **labels, kind="panic") == 1)
            assert m.get(CALLS, **labels) == calls + 1
        finally:
            await page.close()
        assert await exporter.stop() == 0


async def test_push_mode_counts_a_worker_exactly(
    go: GoToolchain, site: StaticSite, chrome: str, client: CDPClient
) -> None:
    """A worker's Go program pushes too (its shim arms its timer in the worker's own scope)."""
    worker_url = f"{site.base_url}/go{go.version}/ledger_worker.js"
    labels = {"page": worker_url, "module": f"/go{go.version}/ledger/main.wasm"}
    args = ("--cdp", chrome, "--poll-interval", "0.2", "--push", "--push-poll-interval", "60")
    async with run_exporter(*args) as exporter:
        await exporter.wait_for_log("connected")
        contexts, [start] = await Contexts.open(client, f"{site.base_url}/go{go.version}/contexts.html?workers=1")
        try:
            stats = await contexts.call(0, "makeFuncs", 12)
            assert stats["funcsCreated"] == start + 12
            await wait_for_metric(
                exporter,
                lambda m: (m.get(FUNCS, **labels), m.get(CALLS, **labels)) == (start + 12, 1 + 2 * contexts.calls),
            )
        finally:
            await contexts.page.close()
        assert await exporter.stop() == 0

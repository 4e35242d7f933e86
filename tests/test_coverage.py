"""Coverage in real Chromium: every way a page compiles Go, //go:wasmexport calls, and several
Go instances in one page counted apart."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from conftest import app_for
from support import CDPClient, Exporter, run_exporter


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def exporter(chrome: str) -> AsyncIterator[Exporter]:
    async with run_exporter("--cdp", chrome, "--poll-interval", "0.2") as running:
        await running.wait_for_log("connected")
        yield running


@pytest.mark.parametrize("load", ["streaming", "arraybuffer", "module", "sync"])
async def test_every_compile_path_is_instrumented_exactly(load: str, go, site, client: CDPClient, exporter) -> None:
    """instantiateStreaming, instantiate(ArrayBuffer), compileStreaming+instantiate(Module), new Module/Instance."""
    app = app_for(site, go, "releases")
    page = await client.open_page(f"{app.url}?load={load}")
    try:
        await page.evaluate("window.releasesReady", await_promise=True)
        await page.evaluate("releases.leak(12)")
        ledger = await page.evaluate("releases.ledger()")
        target = await exporter.settled(page.target_id)
        [instance] = target["instances"]
        assert (instance["instrumented"], instance["release_accounting"]) == ("early", "exact")
        assert instance["module"] == app.module_path
        assert instance["funcs_created"] == ledger["created"]
        assert instance["funcs_live"] == ledger["created"] - ledger["released"]
    finally:
        await page.close()


async def test_wasmexport_calls_are_counted(go, site, client: CDPClient, exporter) -> None:
    """JS calls of //go:wasmexport functions (Go 1.24+) count as calls and are timed."""
    if tuple(int(x) for x in go.version.split(".")[:2]) < (1, 24):
        pytest.skip(f"//go:wasmexport needs Go 1.24; this is {go.version}")
    app = app_for(site, go, "exports")
    page = await client.open_page(app.url)
    try:
        await page.evaluate("window.exportsReady", await_promise=True)
        before = (await exporter.settled(page.target_id))["instances"][0]["func_calls"]
        assert await page.evaluate("[1, 2, 3].map((n) => exportsInstance.exports.add(n, n))") == [2, 4, 6]
        after = (await exporter.settled(page.target_id))["instances"][0]["func_calls"]
        assert after - before == 3
    finally:
        await page.close()


async def test_two_instances_in_one_page_are_counted_apart(go, site, client: CDPClient, exporter) -> None:
    """Two Go programs in one page: distinct module labels, each with its own exact counts."""
    page = await client.open_page(f"{site.base_url}/go{go.version}/two.html")
    try:
        await page.evaluate("window.bothReady", await_promise=True)
        await page.evaluate("ledger.makeFuncs(5); releases.leak(9)")
        ledger_funcs = await page.evaluate("ledger.stats().funcsCreated")
        releases_funcs = await page.evaluate("releases.ledger().created")
        target = await exporter.settled(page.target_id)
        by_module = {i["module"]: i for i in target["instances"]}
        ledger_module = app_for(site, go, "ledger").module_path
        releases_module = app_for(site, go, "releases").module_path
        assert set(by_module) == {ledger_module, releases_module}
        assert by_module[ledger_module]["funcs_created"] == ledger_funcs
        assert by_module[releases_module]["funcs_created"] == releases_funcs
        m = await exporter.metrics()
        page_label = f"{site.base_url}/go{go.version}/two.html"
        assert m.get("gowasm_instances", page=page_label, module=ledger_module) == 1
        assert m.get("gowasm_funcs_created_total", page=page_label, module=releases_module) == releases_funcs
    finally:
        await page.close()

"""Fault injection against real Chromium: the browser killed and restarted, the CDP socket cut
mid-message or silently stalled, renderers crashed, tabs closed mid-injection, a page that never
answers, iframes and workers coming and going, navigation away and back, shutdown.

Every test checks that the exporter kept serving ``/metrics`` and ``/healthz`` and that every
count is exact afterwards: each Go program here is the ledger app, whose start-up registers a
known number of funcs (read from the page itself), so the truth after N starts and M more funcs
is ``N * start + M``, and any lost or doubled count shows. Fakes stand only where a real part
cannot fail on demand: the network between the exporter and the browser
(:class:`~support.FaultInjectingProxy`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import AsyncIterator

import pytest

from conftest import GoApp
from gowasm_demo.server import StaticSite
from gowasm_demo.toolchain import GoToolchain
from gowasm_exporter.cdp import CDPError
from special_pages import alias_app, hostile_url
from support import (
    CDPClient,
    Exporter,
    FaultInjectingProxy,
    Page,
    RestartableChromium,
    free_port,
    run_exporter,
    wait_for_metric,
)

POLL = "0.2"
FUNCS = "gowasm_funcs_created_total"
CALLS = "gowasm_func_calls_total"


@pytest.fixture
def newest_go(toolchains: list[GoToolchain]) -> GoToolchain:
    """Faults are the daemon's business, not Go's: one toolchain is enough."""
    return toolchains[-1]


@pytest.fixture
async def proxy(chrome: str) -> AsyncIterator[FaultInjectingProxy]:
    """A fault-injecting TCP proxy (the named fake) between an exporter and the session's Chromium."""
    injector = await FaultInjectingProxy.to(chrome)
    try:
        yield injector
    finally:
        await injector.close()


def labels_of(app: GoApp) -> dict[str, str]:
    return {"page": app.url, "module": app.module_path}


async def ledger_ready(page: Page) -> int:
    """Wait for the ledger's Go program; its start-up funcs (the ledger's own count)."""
    await page.evaluate("window.ledgerReady", await_promise=True)
    return await page.evaluate("ledger.stats().funcsCreated")


async def attach(client: CDPClient, url: str) -> Page:
    """Attach the test's client to the (one) tab showing ``url``, once it has loaded."""
    for _ in range(200):
        infos = (await client.connection.send("Target.getTargets"))["targetInfos"]
        matches = [t["targetId"] for t in infos if t["type"] == "page" and t["url"] == url]
        if matches:
            break
        await asyncio.sleep(0.05)  # the exporter opens it; the test's client is told nothing
    [target_id] = matches
    attached = await client.connection.send("Target.attachToTarget", {"targetId": target_id, "flatten": True})
    page = Page(client, target_id, client.connection.session(attached["sessionId"]))
    await page.wait_loaded(url)
    return page


async def close_tabs(client: CDPClient, url: str) -> None:
    for info in (await client.connection.send("Target.getTargets"))["targetInfos"]:
        if info["type"] == "page" and info["url"] == url:
            with contextlib.suppress(CDPError):
                await client.connection.send("Target.closeTarget", {"targetId": info["targetId"]})


async def reload(page: Page) -> None:
    loaded = page.client.expect(lambda e: e.method == "Page.loadEventFired" and e.session_id == page.session.session_id)
    await page.session.send("Page.reload")
    await asyncio.wait_for(loaded, 20)


async def crash(page: Page) -> None:
    """``Page.crash``: the renderer dies and never answers the command itself."""
    crashed = page.client.expect(
        lambda e: e.method == "Inspector.targetCrashed" and e.session_id == page.session.session_id
    )
    with contextlib.suppress(CDPError):
        await page.session.send("Page.crash", timeout=0.5)
    await asyncio.wait_for(crashed, 20)


def assert_clean_log(exporter: Exporter) -> None:
    """No traceback and no error line: every fault was expected and handled."""
    bad = [line for line in exporter.log_lines if "Traceback" in line or " ERROR " in line]
    assert bad == [], "\n".join(bad)


@contextlib.asynccontextmanager
async def restartable_browser() -> AsyncIterator[RestartableChromium]:
    browser = RestartableChromium(free_port())
    await browser.start()
    try:
        yield browser
    finally:
        await browser.close()


async def test_browser_killed_and_restarted_on_its_port_is_back_within_5s(
    newest_go: GoToolchain, site: StaticSite, chrome: str, client: CDPClient
) -> None:
    """SIGKILL a browser, restart it on the same port: the exporter serves throughout, reports it down,
    is back (kept page reopened and counted) within 5 s of its return, counts continue exactly, and a
    second browser is unaffected."""
    app = alias_app(site, newest_go, "ledger", "ledger-restart")
    labels = labels_of(app)
    async with restartable_browser() as browser:
        try:
            async with run_exporter(
                "--cdp", browser.endpoint, "--cdp", chrome, "--poll-interval", POLL, "--open", app.url
            ) as exporter:
                await exporter.wait_for_log(f"browser {browser.endpoint}: connected")
                await exporter.wait_for_log(f"browser {chrome}: connected")
                page = await attach(client, app.url)  # the kept page in the session's browser
                start = await ledger_ready(page)
                await wait_for_metric(exporter, lambda m: m.get(FUNCS, **labels) == 2 * start)

                await browser.kill()
                m = await wait_for_metric(
                    exporter, lambda m: m.get("gowasm_exporter_browser_up", browser=browser.endpoint) == 0
                )
                assert await exporter.json("/healthz") == {
                    "status": "ok",
                    "browsers": {browser.endpoint: False, chrome: True},
                }
                assert m.get("gowasm_exporter_browser_up", browser=chrome) == 1
                assert m.get(FUNCS, **labels) == 2 * start  # counters stay
                assert m.get("gowasm_instances", **labels) == 1  # the dead browser's instance is gone

                # The other browser is watched as before while this one is away.
                await page.evaluate("ledger.makeFuncs(5)")
                await wait_for_metric(exporter, lambda m: m.get(FUNCS, **labels) == 2 * start + 5)
                # Away long enough for the reconnect backoff to reach its cap.
                await exporter.wait_for_log(f"browser {browser.endpoint}: cannot reach", count=4)

                await browser.start()
                back = asyncio.get_running_loop().time()
                m = await wait_for_metric(
                    exporter,
                    lambda m: m.get(FUNCS, **labels) == 3 * start + 5 and m.get("gowasm_instances", **labels) == 2,
                )
                elapsed = asyncio.get_running_loop().time() - back
                assert elapsed <= 5.0, f"back after {elapsed:.2f} s"
                assert m.get("gowasm_exporter_browser_up", browser=browser.endpoint) == 1
                assert m.get("gowasm_exporter_reconnects_total", browser=browser.endpoint) == 1
                assert m.get("gowasm_exporter_reconnects_total", browser=chrome) == 0
                assert m.get("gowasm_exporter_connect_failures_total", browser=browser.endpoint) >= 4
                assert m.get("gowasm_exporter_page_reloads_total", page=app.url, reason="closed") == 1
                assert m.get("gowasm_exporter_last_refresh_success", browser=browser.endpoint, subsystem="connect") == 1
                # Nothing counted twice after a while either.
                await exporter.settled((await attach(client, app.url)).target_id)
                assert (await exporter.metrics()).get(FUNCS, **labels) == 3 * start + 5
                assert_clean_log(exporter)
                assert await exporter.stop() == 0
        finally:
            await close_tabs(client, app.url)


async def test_embedded_chromium_killed_is_relaunched_and_counts_continue(
    newest_go: GoToolchain, site: StaticSite
) -> None:
    """Without --cdp: the embedded Chromium SIGKILLed is relaunched, its kept page reopened, counts continue."""
    app = alias_app(site, newest_go, "ledger", "ledger-embedded")
    labels = labels_of(app)
    async with run_exporter("--poll-interval", POLL, "--open", app.url) as exporter:
        first = await exporter.wait_for_log("listening at http://127.0.0.1:")
        instance = await exporter.wait_for_instance(app.url, lambda i: i["funcs_created"] > 0)
        start = instance["funcs_created"]
        match = re.search(r"Chromium (\d+) listening", first)
        assert match is not None
        os.killpg(int(match.group(1)), signal.SIGKILL)
        await exporter.wait_for_log("embedded Chromium")  # "... exited ...; relaunching it"
        await exporter.wait_for_log("listening at http://127.0.0.1:", count=2)
        await exporter.wait_for_log("browser embedded: connected", count=2)
        m = await wait_for_metric(exporter, lambda m: m.get(FUNCS, **labels) == 2 * start)
        assert m.get("gowasm_exporter_reconnects_total", browser="embedded") == 1
        assert m.get("gowasm_instances", **labels) == 1
        assert_clean_log(exporter)
        assert await exporter.stop() == 0


async def test_cdp_socket_cut_mid_message_reconnects_and_counts_continue_exactly(
    newest_go: GoToolchain, site: StaticSite, client: CDPClient, proxy: FaultInjectingProxy
) -> None:
    """The CDP socket dies in the middle of a frame while the page keeps running: after the reconnect
    the page is re-attached late and every func and call made before, during and after the outage
    is counted exactly once; a later panic still arrives (the shim was rebound to the new session)."""
    app = alias_app(site, newest_go, "ledger", "ledger-cut")
    labels = labels_of(app)
    page: Page | None = None
    try:
        async with run_exporter("--cdp", proxy.endpoint, "--poll-interval", POLL) as exporter:
            await exporter.wait_for_log(f"browser {proxy.endpoint}: connected")
            page = await client.open_page(app.url)
            start = await ledger_ready(page)
            calls = 1  # stats()
            await page.evaluate("ledger.makeFuncs(7); for (let i = 0; i < 20; i++) ledger.noop()")
            calls += 1 + 20
            await wait_for_metric(exporter, lambda m: m.get(CALLS, **labels) == calls)

            cut = proxy.cut_mid_message()
            half = await asyncio.wait_for(cut, 10)
            assert half > 2
            proxy.down()  # and unreachable for a while
            m = await wait_for_metric(
                exporter, lambda m: m.get("gowasm_exporter_browser_up", browser=proxy.endpoint) == 0
            )
            assert m.get(FUNCS, **labels) == start + 7
            # The page works on while nobody watches.
            await page.evaluate("ledger.makeFuncs(11); for (let i = 0; i < 13; i++) ledger.noop()")
            calls += 1 + 13
            await exporter.wait_for_log(f"browser {proxy.endpoint}: cannot reach")
            assert (await exporter.json("/healthz"))["browsers"] == {proxy.endpoint: False}

            proxy.up()
            await exporter.wait_for_log(f"browser {proxy.endpoint}: connected", count=2)
            await exporter.wait_for_log("found 1 running Go instance(s)")
            target = await exporter.settled(page.target_id)
            assert target["attach"] == "late"
            m = await exporter.metrics()
            assert m.get(FUNCS, **labels) == start + 7 + 11
            assert m.get(CALLS, **labels) == calls
            assert m.get("gowasm_exporter_reconnects_total", browser=proxy.endpoint) == 1

            # After the reconnect, events flow to the new session.
            assert await page.evaluate("ledger.panic('after the cut')") is None
            calls += 1
            m = await wait_for_metric(exporter, lambda m: m.get("gowasm_panics_total", **labels, kind="panic") == 1)
            assert m.get("gowasm_exits_total", **labels, code="2") == 1
            assert m.get(CALLS, **labels) == calls
            assert m.get(FUNCS, **labels) == start + 18
            [record] = (await exporter.json(f"/api/panics?page={app.url}&kind=panic"))["panics"]
            assert record["message"] == "after the cut"
            assert_clean_log(exporter)
            assert await exporter.stop() == 0
    finally:
        if page is not None:
            await page.close()


async def test_a_panic_while_the_exporter_is_disconnected_is_counted_once_after_the_reconnect(
    newest_go: GoToolchain, site: StaticSite, client: CDPClient, proxy: FaultInjectingProxy
) -> None:
    """The page's Go program panics while the browser is unreachable: its exit event reached no
    one, so the shim sends it again when the exporter re-attaches; the panic is counted once, with
    its message, and a further re-attach does not count it again."""
    app = alias_app(site, newest_go, "ledger", "ledger-away")
    labels = labels_of(app)
    page: Page | None = None
    try:
        async with run_exporter("--cdp", proxy.endpoint, "--poll-interval", POLL) as exporter:
            await exporter.wait_for_log(f"browser {proxy.endpoint}: connected")
            page = await client.open_page(app.url)
            await ledger_ready(page)
            await exporter.settled(page.target_id)
            for outage in (1, 2):
                proxy.down()
                await wait_for_metric(
                    exporter, lambda m: m.get("gowasm_exporter_browser_up", browser=proxy.endpoint) == 0
                )
                if outage == 1:
                    assert await page.evaluate("ledger.panic('while nobody watched')") is None
                proxy.up()
                await exporter.wait_for_log(f"browser {proxy.endpoint}: connected", count=1 + outage)
                m = await wait_for_metric(exporter, lambda m: m.get("gowasm_panics_total", **labels, kind="panic") == 1)
                await exporter.settled(page.target_id)
                m = await exporter.metrics()
                assert m.get("gowasm_panics_total", **labels, kind="panic") == 1
                assert m.get("gowasm_exits_total", **labels, code="2") == 1
                [record] = (await exporter.json(f"/api/panics?page={app.url}"))["panics"]
                assert (record["kind"], record["message"]) == ("panic", "while nobody watched")
            assert await exporter.stop() == 0
    finally:
        if page is not None:
            await page.close()


async def test_stalled_cdp_connection_is_dropped_by_the_heartbeat(
    newest_go: GoToolchain, site: StaticSite, client: CDPClient, proxy: FaultInjectingProxy
) -> None:
    """A network that silently stops forwarding (no FIN, no RST): the heartbeat notices, the browser is
    reported down, and once the network flows again the exporter reconnects and counts exactly."""
    app = alias_app(site, newest_go, "ledger", "ledger-stall")
    labels = labels_of(app)
    page: Page | None = None
    try:
        async with run_exporter("--cdp", proxy.endpoint, "--poll-interval", POLL, "--command-timeout", "1") as exporter:
            await exporter.wait_for_log(f"browser {proxy.endpoint}: connected")
            page = await client.open_page(app.url)
            start = await ledger_ready(page)
            await wait_for_metric(exporter, lambda m: m.get(FUNCS, **labels) == start)

            proxy.stall()
            await exporter.wait_for_log("no heartbeat answer within 1 s")
            m = await wait_for_metric(
                exporter, lambda m: m.get("gowasm_exporter_browser_up", browser=proxy.endpoint) == 0
            )
            assert m.get("gowasm_exporter_last_refresh_success", browser=proxy.endpoint, subsystem="heartbeat") == 0
            await page.evaluate("ledger.makeFuncs(4)")

            proxy.resume()
            await exporter.wait_for_log(f"browser {proxy.endpoint}: connected", count=2)
            await exporter.settled(page.target_id)
            m = await exporter.metrics()
            assert m.get(FUNCS, **labels) == start + 4
            assert m.get("gowasm_exporter_browser_up", browser=proxy.endpoint) == 1
            assert await exporter.stop() == 0
    finally:
        if page is not None:
            await page.close()


async def test_renderer_crash_is_counted_once_and_the_reloaded_tab_is_watched_again(
    newest_go: GoToolchain, site: StaticSite, chrome: str, client: CDPClient
) -> None:
    """Page.crash: one crash counted, the running instance ends as 'crash', its gauges go, counters stay;
    when the tab is reloaded its new Go instance is instrumented early and counted on top."""
    app = alias_app(site, newest_go, "ledger", "ledger-crash")
    labels = labels_of(app)
    async with run_exporter("--cdp", chrome, "--poll-interval", POLL) as exporter:
        await exporter.wait_for_log("connected")
        page = await client.open_page(app.url)
        try:
            start = await ledger_ready(page)
            await page.evaluate("ledger.makeFuncs(3)")
            await wait_for_metric(exporter, lambda m: m.get(FUNCS, **labels) == start + 3)

            await crash(page)
            m = await wait_for_metric(exporter, lambda m: m.get("gowasm_page_crashes_total", page=app.url) == 1)
            assert m.get("gowasm_instances", **labels) is None
            assert m.get(FUNCS, **labels) == start + 3
            assert m.get("gowasm_exporter_renderer_crashes_total", browser=chrome) == 1
            [end] = (await exporter.json(f"/api/panics?page={app.url}"))["panics"]
            assert (end["kind"], end["target_id"]) == ("crash", page.target_id)

            await reload(page)
            again = await ledger_ready(page)
            assert again == start
            target = await exporter.wait_for_target(page.target_id, lambda t: any(i["running"] for i in t["instances"]))
            assert [i["instrumented"] for i in target["instances"] if i["running"]] == ["early"]
            await page.evaluate("ledger.makeFuncs(2)")
            await exporter.settled(page.target_id)
            m = await exporter.metrics()
            assert m.get(FUNCS, **labels) == 2 * start + 5
            assert m.get("gowasm_instances", **labels) == 1
            assert m.get("gowasm_page_crashes_total", page=app.url) == 1
            assert len((await exporter.json(f"/api/panics?page={app.url}"))["panics"]) == 1
            assert_clean_log(exporter)
        finally:
            await page.close()
        assert await exporter.stop() == 0


async def test_kept_page_is_reloaded_after_a_crash_and_reopened_after_a_close(
    newest_go: GoToolchain, site: StaticSite, chrome: str, client: CDPClient
) -> None:
    """--open: a crashed kept page is reloaded in its tab, a closed one reopened; each restore is counted."""
    app = alias_app(site, newest_go, "ledger", "ledger-kept")
    labels = labels_of(app)
    try:
        async with run_exporter("--cdp", chrome, "--poll-interval", POLL, "--open", app.url) as exporter:
            page = await attach(client, app.url)
            start = await ledger_ready(page)
            await wait_for_metric(exporter, lambda m: m.get(FUNCS, **labels) == start)

            await crash(page)
            await exporter.wait_for_log(f"reloaded {app.url} (crash)")
            m = await wait_for_metric(exporter, lambda m: m.get(FUNCS, **labels) == 2 * start)
            assert m.get("gowasm_exporter_page_reloads_total", page=app.url, reason="crash") == 1
            assert m.get("gowasm_page_crashes_total", page=app.url) == 1

            await page.close()
            await exporter.wait_for_log(f"opened {app.url}", count=2)
            m = await wait_for_metric(exporter, lambda m: m.get(FUNCS, **labels) == 3 * start)
            assert m.get("gowasm_exporter_page_reloads_total", page=app.url, reason="closed") == 1
            assert m.get("gowasm_exporter_page_reloads_total", page=app.url, reason="after_exit") == 0
            assert m.get("gowasm_instances", **labels) == 1
            assert_clean_log(exporter)
            assert await exporter.stop() == 0
    finally:
        await close_tabs(client, app.url)


async def test_kept_page_is_reloaded_some_time_after_its_go_program_exited(
    newest_go: GoToolchain, site: StaticSite, chrome: str, client: CDPClient
) -> None:
    """--reload-after-exit 1s: a panic ends the Go program; a second later the page is reloaded and
    measured again, and the reload is counted."""
    app = alias_app(site, newest_go, "ledger", "ledger-after-exit")
    labels = labels_of(app)
    try:
        async with run_exporter(
            "--cdp", chrome, "--poll-interval", POLL, "--open", app.url, "--reload-after-exit", "1s"
        ) as exporter:
            page = await attach(client, app.url)
            start = await ledger_ready(page)
            await wait_for_metric(exporter, lambda m: m.get(FUNCS, **labels) == start)

            assert await page.evaluate("ledger.panic('overnight')") is None
            exited = asyncio.get_running_loop().time()
            await exporter.wait_for_log(f"reloaded {app.url} (after_exit)")
            assert asyncio.get_running_loop().time() - exited >= 1.0
            m = await wait_for_metric(
                exporter, lambda m: m.get(FUNCS, **labels) == 2 * start and m.get("gowasm_instances", **labels) == 1
            )
            assert m.get("gowasm_exporter_page_reloads_total", page=app.url, reason="after_exit") == 1
            assert m.get("gowasm_panics_total", **labels, kind="panic") == 1
            assert m.get("gowasm_exits_total", **labels, code="2") == 1
            # Running again: no further reload.
            await exporter.settled(page.target_id, polls=5)
            assert (await exporter.metrics()).get(
                "gowasm_exporter_page_reloads_total", page=app.url, reason="after_exit"
            ) == 1
            assert_clean_log(exporter)
            assert await exporter.stop() == 0
    finally:
        await close_tabs(client, app.url)


async def test_tabs_closed_during_injection_leave_nothing_behind(
    newest_go: GoToolchain, site: StaticSite, chrome: str, client: CDPClient
) -> None:
    """Tabs closed at every stage of their setup: no leftover target, no error, and the next page is exact."""
    app = alias_app(site, newest_go, "ledger", "ledger-closed")
    labels = labels_of(app)
    async with run_exporter("--cdp", chrome, "--poll-interval", POLL) as exporter:
        await exporter.wait_for_log("connected")
        closed = []
        for i in range(24):
            created = await client.connection.send("Target.createTarget", {"url": app.url})
            if i % 4:
                await asyncio.sleep(0.005 * 2 ** (i % 4))  # 10, 20, 40 ms into its setup
            await client.connection.send("Target.closeTarget", {"targetId": created["targetId"]})
            closed.append(created["targetId"])

        async def leftovers() -> list[str]:
            targets = [t for b in (await exporter.json("/api/targets"))["browsers"] for t in b["targets"]]
            return [t["target_id"] for t in targets if t["target_id"] in closed]

        for _ in range(200):
            if not await leftovers():
                break
            await asyncio.sleep(0.05)
        assert await leftovers() == []
        m = await exporter.metrics()
        assert m.get("gowasm_instances", **labels) is None

        page = await client.open_page(app.url)
        try:
            start = await ledger_ready(page)
            target = await exporter.settled(page.target_id)
            assert [(i["instrumented"], i["funcs_created"]) for i in target["instances"]] == [("early", start)]
            assert (await exporter.metrics()).get("gowasm_instances", **labels) == 1
        finally:
            await page.close()
        assert_clean_log(exporter)
        assert await exporter.stop() == 0


async def test_a_page_that_never_answers_does_not_hold_up_the_others(
    newest_go: GoToolchain, site: StaticSite, chrome: str, client: CDPClient
) -> None:
    """A renderer spinning forever: its commands time out, other pages are polled and counted exactly,
    /metrics answers, and closing the hung tab removes it."""
    app = alias_app(site, newest_go, "ledger", "ledger-beside-hung")
    labels = labels_of(app)
    hung_url = hostile_url(site, newest_go, "hung.html", host="localhost")  # another site: another renderer
    async with run_exporter("--cdp", chrome, "--poll-interval", POLL, "--command-timeout", "1") as exporter:
        await exporter.wait_for_log("connected")
        hung = await client.open_page(hung_url)
        page = await client.open_page(app.url)
        try:
            start = await ledger_ready(page)
            for n in range(1, 6):
                await page.evaluate("ledger.makeFuncs(1)")
                m = await wait_for_metric(exporter, lambda m, n=n: m.get(FUNCS, **labels) == start + n)
                assert m.get("gowasm_exporter_up") == 1
            hung_target = await exporter.target(hung.target_id)
            assert hung_target is not None
            polls = hung_target["polls"]
            await exporter.settled(page.target_id, polls=10)  # two seconds: the hung page's polls time out
            hung_target = await exporter.target(hung.target_id)
            assert hung_target is not None and hung_target["polls"] == polls
        finally:
            await hung.close()
            await page.close()
        for _ in range(100):
            if await exporter.target(hung.target_id) is None:
                break
            await asyncio.sleep(0.05)
        assert await exporter.target(hung.target_id) is None
        assert await exporter.stop() == 0


async def test_out_of_process_iframes_and_workers_coming_and_going(
    newest_go: GoToolchain, site: StaticSite, chrome: str, client: CDPClient
) -> None:
    """Cross-site iframes and dedicated workers created and removed in a loop beside a Go program:
    the exporter stays healthy and the page's numbers are exact."""
    peer = hostile_url(site, newest_go, "peer.html", host="localhost")
    url = hostile_url(site, newest_go, "churn.html", f"peer={peer}")
    labels = {"page": url.split("?")[0], "module": f"/go{newest_go.version}/ledger/main.wasm"}
    async with run_exporter("--cdp", chrome, "--poll-interval", POLL) as exporter:
        await exporter.wait_for_log("connected")
        page = await client.open_page(url)
        try:
            start = await ledger_ready(page)
            calls = 1
            for _ in range(3):
                assert await page.evaluate("churn(10)", await_promise=True) == 10
                await page.evaluate("ledger.makeFuncs(2); ledger.noop()")
                calls += 2
            await exporter.settled(page.target_id)
            m = await exporter.metrics()
            assert m.get(FUNCS, **labels) == start + 6
            assert m.get(CALLS, **labels) == calls
            assert m.get("gowasm_instances", **labels) == 1
            assert m.get("gowasm_exporter_targets", browser=chrome, type="page") >= 1
            assert_clean_log(exporter)
        finally:
            await page.close()
        assert await exporter.stop() == 0


async def test_go_programs_in_same_process_iframes_come_and_go_beside_the_page(
    newest_go: GoToolchain, site: StaticSite, chrome: str, client: CDPClient
) -> None:
    """Same-origin iframes running Go come and go (each removed right after its program made 5
    funcs): every one of them is a target of its own whose instance ends once (``unload``), and
    the page's own instance keeps running with exact counts."""
    url = hostile_url(site, newest_go, "go_iframes.html")
    labels = {"page": url, "module": f"/go{newest_go.version}/ledger/main.wasm"}
    frame_page = f"{site.base_url}/go{newest_go.version}/ledger/index.html"
    async with run_exporter("--cdp", chrome, "--poll-interval", POLL) as exporter:
        await exporter.wait_for_log("connected")
        page = await client.open_page(url)
        try:
            start = await ledger_ready(page)
            for _ in range(3):
                assert await page.evaluate("goFrames(4)", await_promise=True) == 4
                await page.evaluate("ledger.makeFuncs(1)")
            target = await exporter.settled(page.target_id)
            assert [(i["running"], i["funcs_created"]) for i in target["instances"]] == [(True, start + 3)]
            m = await exporter.metrics()
            assert m.get(FUNCS, **labels) == start + 3
            assert m.get("gowasm_instances", **labels) == 1
            assert m.get("gowasm_instances", page=frame_page, module=labels["module"]) is None
            assert m.get("gowasm_exporter_rejected_events_total", reason="other_frame") == 0
            ends = (await exporter.json(f"/api/panics?page={frame_page}"))["panics"]
            assert [e["kind"] for e in ends] == ["unload"] * 12
            assert len({e["target_id"] for e in ends}) == 12
            assert (await exporter.json(f"/api/panics?page={url}"))["panics"] == []
            assert_clean_log(exporter)
        finally:
            await page.close()
        assert await exporter.stop() == 0


async def test_navigation_away_and_back_continues_the_page_counters(
    newest_go: GoToolchain, site: StaticSite, chrome: str, client: CDPClient
) -> None:
    """A tab navigates to another app and back: the first page's series go while it is away, its
    counters come back where they were and continue; a closed tab's page series disappear."""
    app = alias_app(site, newest_go, "ledger", "ledger-nav")
    other = alias_app(site, newest_go, "ledger", "ledger-nav-other")
    labels, other_labels = labels_of(app), labels_of(other)
    async with run_exporter("--cdp", chrome, "--poll-interval", POLL) as exporter:
        await exporter.wait_for_log("connected")
        page = await client.open_page(app.url)
        try:
            start = await ledger_ready(page)
            await page.evaluate("ledger.makeFuncs(4)")
            await wait_for_metric(exporter, lambda m: m.get(FUNCS, **labels) == start + 4)

            for url in (other.url, app.url):
                loaded = client.expect(
                    lambda e: e.method == "Page.loadEventFired" and e.session_id == page.session.session_id
                )
                await page.session.send("Page.navigate", {"url": url})
                await asyncio.wait_for(loaded, 20)
                await ledger_ready(page)
                if url == other.url:
                    m = await wait_for_metric(exporter, lambda m: m.get(FUNCS, **other_labels) == start)
                    assert m.get("gowasm_instances", **labels) is None
                    assert m.get("gowasm_page_dom_nodes", page=app.url) is None
                    assert m.get(FUNCS, **labels) == start + 4
            await page.evaluate("ledger.makeFuncs(1)")
            m = await wait_for_metric(exporter, lambda m: m.get(FUNCS, **labels) == 2 * start + 5)
            assert m.get("gowasm_instances", **labels) == 1
            assert m.get("gowasm_instances", **other_labels) is None
            assert m.get(FUNCS, **other_labels) == start
        finally:
            await page.close()
        m = await wait_for_metric(exporter, lambda m: m.get("gowasm_page_dom_nodes", page=app.url) is None)
        assert m.get(FUNCS, **labels) == 2 * start + 5
        assert await exporter.stop() == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_stop_signal_ends_it_within_seconds_and_leaves_pages_running(
    signum: signal.Signals, newest_go: GoToolchain, site: StaticSite, chrome: str, client: CDPClient
) -> None:
    """SIGTERM or SIGINT ends the exporter within a few seconds, even mid-setup of a new tab; every
    page runs on: the watched one answers calls into Go, the tab opened during shutdown loads."""
    app = alias_app(site, newest_go, "ledger", "ledger-shutdown")
    async with run_exporter("--cdp", chrome, "--poll-interval", POLL) as exporter:
        await exporter.wait_for_log("connected")
        page = await client.open_page(app.url)
        late: Page | None = None
        try:
            await ledger_ready(page)
            await exporter.settled(page.target_id)
            created = await client.connection.send("Target.createTarget", {"url": app.url})
            started = asyncio.get_running_loop().time()
            exporter.proc.send_signal(signum)
            assert await exporter.stop() == 0
            assert asyncio.get_running_loop().time() - started < 3.0

            assert await page.evaluate("ledger.noop(), ledger.stats().funcsCreated") > 0
            attached = await client.connection.send(
                "Target.attachToTarget", {"targetId": created["targetId"], "flatten": True}
            )
            late = Page(client, created["targetId"], client.connection.session(attached["sessionId"]))
            await late.wait_loaded(app.url)
            assert await ledger_ready(late) > 0
        finally:
            await page.close()
            if late is not None:
                await late.close()


async def test_sigusr1_dumps_the_tasks_and_it_runs_on(chrome: str) -> None:
    """``kill -USR1``: the exporter writes its asyncio tasks (one per browser supervisor, the HTTP
    server, ...) and where each waits to stderr, and keeps serving."""
    async with run_exporter("--cdp", chrome) as exporter:
        await exporter.wait_for_log("connected")
        exporter.proc.send_signal(signal.SIGUSR1)
        await exporter.wait_for_log("gowasm-exporter: ")
        await exporter.wait_for_log(f"-- browser {chrome}:")
        assert (await exporter.json("/healthz"))["browsers"] == {chrome: True}
        assert await exporter.stop() == 0


async def test_metrics_answer_while_every_browser_is_gone() -> None:
    """No browser at all, for the whole run: /metrics and /healthz answer, the browser is reported
    down, and failed attempts are counted."""
    endpoint = f"http://127.0.0.1:{free_port()}"
    async with run_exporter("--cdp", endpoint) as exporter:
        await exporter.wait_for_log(f"browser {endpoint}: cannot reach", count=2)
        m = await exporter.metrics()
        assert m.get("gowasm_exporter_up") == 1
        assert m.get("gowasm_exporter_browser_up", browser=endpoint) == 0
        assert m.get("gowasm_exporter_connect_failures_total", browser=endpoint) >= 2
        assert m.get("gowasm_exporter_last_refresh_success", browser=endpoint, subsystem="connect") == 0
        assert await exporter.json("/healthz") == {"status": "ok", "browsers": {endpoint: False}}
        assert await exporter.stop() == 0

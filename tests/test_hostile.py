"""Hostile pages: everything a page sends is untrusted, and one page must not hurt the others.

Each test runs a *reference* page (the ledger app under its own alias) beside hostile pages
(``tests/apps/hostile/``) and proves three things: the exporter keeps serving with no error in
its log, the reference page's numbers stay exact, and the exporter's memory does not grow with
repeated abuse (a second round of the same abuse adds less than ``SECOND_ROUND_GROWTH``). Where
the truth about the rejected input is known, its count is asserted exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from conftest import GoApp
from gowasm_demo.server import StaticSite
from gowasm_demo.toolchain import GoToolchain
from special_pages import alias_app, hostile_url
from support import CDPClient, Exporter, Metrics, Page, rss_bytes, run_exporter, wait_for_metric

POLL = "0.2"
FUNCS = "gowasm_funcs_created_total"
MiB = 1 << 20
SECOND_ROUND_GROWTH = 4 * MiB


@pytest.fixture
def newest_go(toolchains: list[GoToolchain]) -> GoToolchain:
    """Hostile input is the daemon's business, not Go's: one toolchain is enough."""
    return toolchains[-1]


class Reference:
    """The well-behaved page beside the hostile ones, with its own exact ledger of funcs."""

    def __init__(self, exporter: Exporter, page: Page, app: GoApp, start: int) -> None:
        self.exporter = exporter
        self.page = page
        self.labels = {"page": app.url, "module": app.module_path}
        self.funcs = start

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, exporter: Exporter, client: CDPClient, app: GoApp) -> AsyncIterator[Reference]:
        page = await client.open_page(app.url)
        try:
            await page.evaluate("window.ledgerReady", await_promise=True)
            yield cls(exporter, page, app, await page.evaluate("ledger.stats().funcsCreated"))
        finally:
            await page.close()

    async def check(self) -> Metrics:
        """Make funcs, then see the exporter count exactly those."""
        await self.page.evaluate("ledger.makeFuncs(3)")
        self.funcs += 3
        m = await wait_for_metric(self.exporter, lambda m: m.get(FUNCS, **self.labels) == self.funcs)
        assert m.get("gowasm_instances", **self.labels) == 1
        return m


def rejected(m: Metrics, *reasons: str) -> float:
    return sum(m.get("gowasm_exporter_rejected_events_total", reason=r) or 0 for r in reasons)


def assert_clean_log(exporter: Exporter) -> None:
    bad = [line for line in exporter.log_lines if "Traceback" in line or " ERROR " in line]
    assert bad == [], "\n".join(bad)


async def test_invalid_and_oversized_payloads_are_rejected_counted_and_rate_capped(
    newest_go: GoToolchain, site: StaticSite, chrome: str, client: CDPClient
) -> None:
    """5,000 non-JSON and 20 oversized payloads per round: each is rejected exactly once (invalid
    or rate_limited), the reference page stays exact, and a second round does not grow memory."""
    async with run_exporter("--cdp", chrome, "--poll-interval", POLL) as exporter:
        await exporter.wait_for_log("connected")
        async with Reference.open(exporter, client, alias_app(site, newest_go, "ledger", "ref-flood")) as ref:
            flood = await client.open_page(hostile_url(site, newest_go, "flood.html"))
            try:
                rss = []
                for _ in range(2):
                    before = rejected(await exporter.metrics(), "invalid", "rate_limited")
                    sent = await flood.evaluate("flood.garbage(5000) + flood.oversized(20, 300000)")
                    assert sent == 5020
                    m = await wait_for_metric(
                        exporter, lambda m, b=before: rejected(m, "invalid", "rate_limited") == b + 5020
                    )
                    assert m.get("gowasm_exporter_rejected_events_total", reason="rate_limited") > 0
                    await ref.check()
                    rss.append(rss_bytes(exporter.proc.pid))
                assert rss[1] - rss[0] < SECOND_ROUND_GROWTH, rss
                assert_clean_log(exporter)
            finally:
                await flood.close()
        assert await exporter.stop() == 0


async def test_megabytes_of_fake_panics_are_truncated_bounded_and_leave_other_pages_alone(
    newest_go: GoToolchain, site: StaticSite, chrome: str, client: CDPClient
) -> None:
    """Rounds of 100 fake panics of 200 KB each (20 MB): traces kept truncated to 64 KiB, history
    bounded with evictions counted exactly, memory flat once the per-page bounds are reached, and
    the reference page's own panic and counts untouched."""
    app = alias_app(site, newest_go, "ledger", "ref-panics")
    async with run_exporter("--cdp", chrome, "--poll-interval", POLL, "--panic-history", "20") as exporter:
        await exporter.wait_for_log("connected")
        async with Reference.open(exporter, client, app) as ref:
            flood_url = hostile_url(site, newest_go, "flood.html")
            flood = await client.open_page(flood_url)
            fake = {"page": flood_url, "module": "unknown", "kind": "panic"}
            try:
                rss = []
                rounds = 4  # the page's bounds are full after two: the last two must not grow
                for round_ in range(1, rounds + 1):
                    assert await flood.evaluate(f"flood.panics(100, 200000, 'fake-{round_}')") == 100
                    await wait_for_metric(exporter, lambda m, r=round_: m.get("gowasm_panics_total", **fake) == 100 * r)
                    rss.append(rss_bytes(exporter.proc.pid))
                assert rss[-1] - rss[-2] < SECOND_ROUND_GROWTH, rss

                panics = (await exporter.json("/api/panics?limit=500"))["panics"]
                assert len(panics) == 20
                assert all(p["page"] == flood_url and p["trace_truncated"] for p in panics)
                assert max(len(p["trace"]) for p in panics) == 64 * 1024
                assert panics[0]["message"].startswith("fake 99 </pre><script>alert(1)</script> AAAA")
                m = await ref.check()
                assert m.get("gowasm_panics_total", **ref.labels, kind="panic") == 0
                assert m.get("gowasm_exporter_dropped_events_total", reason="history_full") == 100 * rounds - 20

                # The reference page's own panic is recorded and counted once, whatever came before.
                assert await ref.page.evaluate("ledger.panic('mine')") is None
                m = await wait_for_metric(
                    exporter, lambda m: m.get("gowasm_panics_total", **ref.labels, kind="panic") == 1
                )
                [mine] = (await exporter.json(f"/api/panics?page={app.url}"))["panics"]
                assert mine["message"] == "mine"
                assert m.get("gowasm_exporter_dropped_events_total", reason="history_full") == 100 * rounds + 1 - 20
                assert m.get(FUNCS, **ref.labels) == ref.funcs
                assert "alert(1)" not in (await exporter.http.get("/")).text
                assert max(len(line) for line in exporter.log_lines) < 16 * 1024
                assert_clean_log(exporter)
            finally:
                await flood.close()
        assert await exporter.stop() == 0


async def test_urls_and_module_names_are_normalised_and_capped(
    newest_go: GoToolchain, site: StaticSite, chrome: str, client: CDPClient
) -> None:
    """A page claiming 60 module URLs and moving through 8 paths (each seen by a scrape): with
    --max-label-values 5, at most 5 values per label plus 'other', no query string or secret in any
    label, and the reference page keeps its own labels and exact numbers."""
    async with run_exporter("--cdp", chrome, "--poll-interval", POLL, "--max-label-values", "5") as exporter:
        await exporter.wait_for_log("connected")
        async with Reference.open(exporter, client, alias_app(site, newest_go, "ledger", "ref-labels")) as ref:
            await ref.check()
            flood = await client.open_page(hostile_url(site, newest_go, "flood.html"))
            pages: set[str] = set()
            modules: set[str] = set()

            def collect(m: Metrics) -> None:
                for name, labels in m.samples:
                    if name.startswith("gowasm_") and not name.startswith("gowasm_exporter_"):
                        values = dict(labels)
                        pages.update(v for k, v in values.items() if k == "page")
                        modules.update(v for k, v in values.items() if k == "module")

            try:
                await flood.evaluate("flood.instances(30, 'a')")
                for i in range(8):
                    await flood.evaluate(f"history.pushState(null, '', '/evil/{i}/<b>x</b>?secret={i}')")
                    await exporter.wait_for_target(flood.target_id, lambda t, i=i: f"/evil/{i}/" in t["url"])
                    collect(await exporter.metrics())
                await flood.evaluate("flood.instances(30, 'b')")
                await exporter.settled(flood.target_id)
                collect(await ref.check())
                assert len(pages - {"other"}) <= 5 and "other" in pages, pages
                assert len(modules - {"other"}) <= 5 and "other" in modules, modules
                assert ref.labels["page"] in pages and ref.labels["module"] in modules
                for value in pages | modules:
                    assert "?" not in value and "secret" not in value and len(value) <= 256, value
                assert_clean_log(exporter)
            finally:
                await flood.close()
        assert await exporter.stop() == 0


async def test_pages_that_redefine_go_webassembly_the_binding_or_json(
    newest_go: GoToolchain, site: StaticSite, chrome: str, client: CDPClient
) -> None:
    """Pages that break Go, WebAssembly, the binding and JSON after their Go program started: the
    exporter keeps watching them and the reference page, and counts the binding's abuse exactly."""
    variants = ["go", "webassembly", "binding", "json", "go,webassembly,binding,json"]
    async with run_exporter("--cdp", chrome, "--poll-interval", POLL) as exporter:
        await exporter.wait_for_log("connected")
        async with Reference.open(exporter, client, alias_app(site, newest_go, "ledger", "ref-redefine")) as ref:
            before = rejected(await exporter.metrics(), "invalid", "rate_limited")
            pages = []
            try:
                for what in variants:
                    page = await client.open_page(hostile_url(site, newest_go, "redefine.html", f"what={what}"))
                    pages.append(page)
                    await page.evaluate("window.ledgerReady", await_promise=True)
                for page, what in zip(pages, variants, strict=True):
                    for _ in range(100):
                        if await page.evaluate("window.redefined") == ",".join(sorted(what.split(","))):
                            break
                        await asyncio.sleep(0.02)
                    # Still watched: polls go on (a failing poll still counts as an attempt).
                    target = await exporter.settled(page.target_id)
                    assert target["instances"], what
                m = await wait_for_metric(
                    exporter, lambda m: rejected(m, "invalid", "rate_limited") == before + 2 * 100
                )
                await ref.check()
                assert m.get("gowasm_exporter_up") == 1
                assert_clean_log(exporter)
            finally:
                for page in pages:
                    await page.close()
        assert await exporter.stop() == 0


async def test_a_page_that_owns_the_shims_key_before_the_exporter_arrives(
    newest_go: GoToolchain, site: StaticSite, chrome: str, client: CDPClient
) -> None:
    """Pages running before the exporter that answer its polls with an 80 MB string, garbage, throws
    or lies: the connection survives (no reconnect), each bad answer is rejected, a liar's counters
    never exceed its first claim, and the reference page stays exact."""
    modes = ["huge", "garbage", "throw", "liar"]
    urls = {mode: hostile_url(site, newest_go, "fake_shim.html", f"mode={mode}") for mode in modes}
    fakes = [await client.open_page(url) for url in urls.values()]
    try:
        async with run_exporter("--cdp", chrome, "--poll-interval", POLL) as exporter:
            await exporter.wait_for_log("connected")
            async with Reference.open(exporter, client, alias_app(site, newest_go, "ledger", "ref-fake")) as ref:
                m0 = await exporter.metrics()
                for fake in fakes:
                    await exporter.settled(fake.target_id, polls=0)
                rss = []
                for _ in range(2):
                    m = await exporter.metrics()
                    await wait_for_metric(
                        exporter,
                        lambda m2, m=m: (
                            rejected(m2, "snapshot_invalid") >= rejected(m, "snapshot_invalid") + 20
                            and rejected(m2, "snapshot_exception") >= rejected(m, "snapshot_exception") + 5
                        ),
                    )
                    rss.append(rss_bytes(exporter.proc.pid))
                assert rss[1] - rss[0] < SECOND_ROUND_GROWTH, rss
                m = await ref.check()
                assert rejected(m, "snapshot_invalid") > rejected(m0, "snapshot_invalid")
                liar = {"page": urls["liar"].split("?")[0], "module": "unknown"}
                assert m.get(FUNCS, **liar) == 1_000_000
                assert m.get("gowasm_exporter_reconnects_total", browser=chrome) == 0
                assert m.get("gowasm_exporter_browser_up", browser=chrome) == 1
                assert_clean_log(exporter)
            assert await exporter.stop() == 0
    finally:
        for fake in fakes:
            await fake.close()


async def test_a_binding_payload_over_the_socket_cap_costs_a_reconnect_not_a_count(
    newest_go: GoToolchain, site: StaticSite, chrome: str, client: CDPClient
) -> None:
    """A page can send the binding more than the websocket accepts (70 MB): the connection drops,
    the exporter reconnects, and the reference page's counts continue exactly (a known limit, see
    the README's Security section)."""
    async with run_exporter("--cdp", chrome, "--poll-interval", POLL) as exporter:
        await exporter.wait_for_log("connected")
        async with Reference.open(exporter, client, alias_app(site, newest_go, "ledger", "ref-cap")) as ref:
            await ref.check()
            flood = await client.open_page(hostile_url(site, newest_go, "flood.html"))
            try:
                assert await flood.evaluate("flood.oversized(1, 70 * 1024 * 1024)") == 1
                await exporter.wait_for_log(f"browser {chrome}: connected", count=2)
                await ref.page.evaluate("ledger.makeFuncs(4)")
                ref.funcs += 4
                await ref.check()
                await exporter.settled(ref.page.target_id)
                m = await exporter.metrics()
                assert m.get(FUNCS, **ref.labels) == ref.funcs
                assert m.get("gowasm_exporter_reconnects_total", browser=chrome) == 1
            finally:
                await flood.close()
        assert await exporter.stop() == 0

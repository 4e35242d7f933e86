"""Go beyond the top-level page, in real Chromium: dedicated workers, out-of-process (cross-site)
iframes and same-process (same-site) iframes, each counted exactly as a target of its own.

Every Go program here is the ledger app, driven through ``tests/apps/contexts.html``: the page
starts the workers and iframes, and forwards calls to them (``call(i, method)``), each answered
with the app's own numbers. The truth is the app's: its start-up funcs plus those it made, and
two calls into Go per forwarded call (the method, then ``stats``) plus one at start-up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from conftest import app_for
from gowasm_demo.server import StaticSite
from gowasm_demo.toolchain import GoToolchain
from support import CDPClient, Exporter, Page, run_exporter, wait_for_metric

FUNCS = "gowasm_funcs_created_total"
CALLS = "gowasm_func_calls_total"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def exporter(chrome: str) -> AsyncIterator[Exporter]:
    async with run_exporter("--cdp", chrome, "--poll-interval", "0.2") as running:
        await running.wait_for_log("connected")
        yield running


def base(site: StaticSite, go: GoToolchain, *, host: str | None = None) -> str:
    url = f"{site.base_url}/go{go.version}"
    return url if host is None else url.replace("127.0.0.1", host)


def module_of(site: StaticSite, go: GoToolchain) -> str:
    return app_for(site, go, "ledger").module_path


async def children(exporter: Exporter, parent: str, kind: str, count: int = 1) -> list[dict[str, Any]]:
    """The targets of type ``kind`` inside ``parent`` in ``/api/targets``, once there are ``count``
    of them, each with its Go instance."""

    async def listed() -> list[dict[str, Any]]:
        browsers = (await exporter.json("/api/targets"))["browsers"]
        return [t for b in browsers for t in b["targets"] if t["parent"] == parent and t["type"] == kind]

    found: list[dict[str, Any]] = []
    for _ in range(100):
        found = await listed()
        if len(found) == count and all(t["instances"] for t in found):
            return found
        await exporter.settled(parent, polls=1)  # look again after the exporter's next poll
    raise AssertionError(f"{count} {kind} target(s) in {parent} never listed")


class Contexts:
    """``contexts.html`` opened by the test's own client: calls forwarded into its workers and iframes."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.calls = 0  # forwarded calls, for the expected count of calls into Go

    @classmethod
    async def open(cls, client: CDPClient, url: str) -> tuple[Contexts, list[int]]:
        page = await client.open_page(url)
        stats = await page.evaluate("window.contextsReady", await_promise=True)
        return cls(page), [s["funcsCreated"] for s in stats]

    async def call(self, i: int, method: str, arg: int | None = None) -> dict[str, Any]:
        self.calls += 1
        answer = await self.page.evaluate(
            f"call({i}, {method!r}, {arg if arg is not None else 'undefined'})", await_promise=True
        )
        assert answer["error"] is None, answer
        return answer["stats"]


async def test_a_worker_started_by_a_watched_page_is_counted_exactly(
    go: GoToolchain, site: StaticSite, chrome: str, client: CDPClient, exporter: Exporter
) -> None:
    """A dedicated worker's Go program, instrumented before its first script: exact funcs and calls,
    a target of type worker inside the page, and an ``unload`` end when the page terminates it."""
    worker_url = f"{base(site, go)}/ledger_worker.js"
    labels = {"page": worker_url, "module": module_of(site, go)}
    contexts, [start] = await Contexts.open(client, f"{base(site, go)}/contexts.html?workers=1")
    try:
        await contexts.call(0, "makeFuncs", 5)
        for _ in range(3):
            await contexts.call(0, "noop")
        stats = await contexts.call(0, "stats")
        assert stats["funcsCreated"] == start + 5
        [worker] = await children(exporter, contexts.page.target_id, "worker")
        assert worker["url"] == worker_url
        target = await exporter.settled(worker["target_id"])
        [instance] = target["instances"]
        assert (instance["instrumented"], instance["running"]) == ("early", True)
        # Everything hooked, the module probed: exact Release accounting in the worker too.
        assert (target["missing_hooks"], instance["release_accounting"]) == ([], "exact")
        assert instance["funcs_created"] == start + 5
        assert instance["func_calls"] == 1 + 2 * contexts.calls
        m = await exporter.metrics()
        assert m.get(FUNCS, **labels) == start + 5
        assert m.get(CALLS, **labels) == 1 + 2 * contexts.calls
        assert m.get("gowasm_instances", **labels) == 1
        assert m.get("gowasm_exporter_targets", browser=chrome, type="worker") == 1

        await contexts.page.evaluate("remove(0)")
        m = await wait_for_metric(exporter, lambda m: m.get("gowasm_instances", **labels) is None)
        assert m.get(FUNCS, **labels) == start + 5  # counters stay
        ends = (await exporter.json(f"/api/panics?page={worker_url}&kind=unload"))["panics"]
        assert [(e["kind"], e["message"]) for e in ends] == [
            ("unload", "the worker was terminated while Go was running")
        ]
        assert await exporter.target(worker["target_id"]) is None
    finally:
        await contexts.page.close()


async def test_a_panic_in_a_worker_is_recorded_with_its_trace(
    go: GoToolchain, site: StaticSite, client: CDPClient, exporter: Exporter
) -> None:
    """The worker's Go program panics in a callback: one ``panic`` end for the worker's page label,
    with the panic value and the callback as its cause; the page itself runs on."""
    worker_url = f"{base(site, go)}/ledger_worker.js"
    labels = {"page": worker_url, "module": module_of(site, go)}
    before = (await exporter.metrics()).get(FUNCS, **labels) or 0  # this module's other worker tests
    contexts, [start] = await Contexts.open(client, f"{base(site, go)}/contexts.html?workers=1")
    try:
        await contexts.call(0, "makeFuncs", 2)
        answer = await contexts.page.evaluate("call(0, 'panic', undefined)", await_promise=True)
        # A panic in a callback does not throw to its JS caller; the next call into Go does.
        assert (answer["error"], answer["stats"]) == (None, None)
        m = await wait_for_metric(exporter, lambda m: m.get("gowasm_panics_total", **labels, kind="panic") == 1)
        assert m.get(FUNCS, **labels) == before + start + 2
        [end] = (await exporter.json(f"/api/panics?page={worker_url}&kind=panic"))["panics"]
        assert (end["kind"], end["value"], end["exit_code"]) == ("panic", "ledger panic", 2)
        assert end["cause"]["entry"] == "callback"
        assert "panic: ledger panic" in end["trace"]
    finally:
        await contexts.page.close()


async def test_a_cross_site_iframe_opened_after_the_exporter_is_counted_exactly(
    go: GoToolchain, site: StaticSite, client: CDPClient, exporter: Exporter
) -> None:
    """Another site's iframe runs in its own renderer (its own CDP target): instrumented before its
    first script through the page's auto-attach, exact counts under the iframe's own page label."""
    frame_url = f"{base(site, go, host='localhost')}/ledger_remote.html"
    labels = {"page": frame_url, "module": module_of(site, go)}
    contexts, [start] = await Contexts.open(client, f"{base(site, go)}/contexts.html?frame={frame_url}")
    try:
        infos = (await client.connection.send("Target.getTargets"))["targetInfos"]
        assert [i["type"] for i in infos if i["url"] == frame_url] == ["iframe"]  # out of process indeed
        await contexts.call(0, "makeFuncs", 7)
        await contexts.call(0, "noop")
        [frame] = await children(exporter, contexts.page.target_id, "iframe")
        assert frame["url"] == frame_url
        target = await exporter.settled(frame["target_id"])
        [instance] = target["instances"]
        assert (instance["instrumented"], instance["funcs_created"]) == ("early", start + 7)
        assert (target["missing_hooks"], instance["release_accounting"]) == ([], "exact")
        assert instance["func_calls"] == 1 + 2 * contexts.calls
        m = await exporter.metrics()
        assert m.get(FUNCS, **labels) == start + 7
        assert m.get(CALLS, **labels) == 1 + 2 * contexts.calls
        assert m.get("gowasm_instances", **labels) == 1
        page_target = await exporter.target(contexts.page.target_id)
        assert page_target is not None and page_target["instances"] == []  # the page runs no Go itself

        await contexts.page.evaluate("remove(0)")
        await wait_for_metric(exporter, lambda m: m.get("gowasm_instances", **labels) is None)
        ends = (await exporter.json(f"/api/panics?page={frame_url}&kind=unload"))["panics"]
        assert len(ends) == 1
    finally:
        await contexts.page.close()


async def test_a_same_site_iframe_and_its_page_are_counted_apart(
    go: GoToolchain, site: StaticSite, client: CDPClient, exporter: Exporter
) -> None:
    """A same-site iframe shares its page's renderer and CDP session: its Go program is still a
    target of its own (type iframe, id = its frame id), with exact counts, beside the page's."""
    frame_url = f"{base(site, go)}/ledger_remote.html"
    page_url = f"{base(site, go)}/contexts.html"
    module = module_of(site, go)
    contexts, [start] = await Contexts.open(client, f"{page_url}?main=1&frame=ledger_remote.html")
    try:
        page = contexts.page
        await page.evaluate("window.ledgerReady", await_promise=True)
        page_start = await page.evaluate("ledger.stats().funcsCreated")
        await page.evaluate("ledger.makeFuncs(2)")
        await contexts.call(0, "makeFuncs", 11)
        infos = (await client.connection.send("Target.getTargets"))["targetInfos"]
        assert [i for i in infos if i["url"] == frame_url] == []  # in the page's renderer: no target
        [frame] = await children(exporter, page.target_id, "iframe")
        assert frame["url"] == frame_url
        target = await exporter.settled(frame["target_id"])
        assert [(i["instrumented"], i["funcs_created"]) for i in target["instances"]] == [("early", start + 11)]
        own = await exporter.settled(page.target_id)
        assert [(i["instrumented"], i["funcs_created"]) for i in own["instances"]] == [("early", page_start + 2)]
        m = await exporter.metrics()
        assert m.get(FUNCS, page=frame_url, module=module) == start + 11
        assert m.get(CALLS, page=frame_url, module=module) == 1 + 2 * contexts.calls
        assert m.get(FUNCS, page=page_url, module=module) == page_start + 2
        assert m.get("gowasm_exporter_rejected_events_total", reason="other_frame") == 0

        await page.evaluate("remove(0)")
        await wait_for_metric(exporter, lambda m: m.get("gowasm_instances", page=frame_url, module=module) is None)
        ends = (await exporter.json(f"/api/panics?page={frame_url}&kind=unload"))["panics"]
        assert [e["message"] for e in ends] == ["the iframe was removed or navigated away while Go was running"]
        m = await exporter.metrics()
        assert m.get("gowasm_instances", page=page_url, module=module) == 1  # the page's own runs on
    finally:
        await contexts.page.close()

"""Go in workers and iframes that were already running when the exporter started, in real Chromium.

Its own module: the exporter of ``test_frames.py`` lives for that whole module and would
instrument these pages early.
"""

from __future__ import annotations

from gowasm_demo.server import StaticSite
from gowasm_demo.toolchain import GoToolchain
from support import CDPClient, run_exporter
from test_frames import Contexts, base, children


async def test_workers_and_iframes_already_running_are_found_late(
    go: GoToolchain, site: StaticSite, chrome: str, client: CDPClient
) -> None:
    """A page with a worker, a cross-site and a same-site iframe, all running Go before the exporter
    starts: each Go program is found (``late``), and what it does afterwards is counted exactly."""
    cross = f"{base(site, go, host='localhost')}/ledger_remote.html"
    same = f"{base(site, go)}/ledger_remote.html"
    contexts, starts = await Contexts.open(
        client, f"{base(site, go)}/contexts.html?frame={cross}&frame=ledger_remote.html&workers=1"
    )
    try:
        async with run_exporter("--cdp", chrome, "--poll-interval", "0.2") as exporter:
            await exporter.wait_for_log("connected")
            found = {}
            for kind, count in (("iframe", 2), ("worker", 1)):
                for target in await children(exporter, contexts.page.target_id, kind, count):
                    found[target["url"]] = target
            assert set(found) == {cross, same, f"{base(site, go)}/ledger_worker.js"}
            before = {}
            for url, target in found.items():
                [instance] = (await exporter.settled(target["target_id"]))["instances"]
                assert instance["instrumented"] == "late"
                before[url] = instance["funcs_created"]
            for i in range(3):
                await contexts.call(i, "makeFuncs", 4 + i)
            by_index = {0: cross, 1: same, 2: f"{base(site, go)}/ledger_worker.js"}
            for i, url in by_index.items():
                [instance] = (await exporter.settled(found[url]["target_id"]))["instances"]
                assert instance["funcs_created"] - before[url] == 4 + i, url
            assert starts == [starts[0]] * 3
            assert await exporter.stop() == 0
    finally:
        await contexts.page.close()

"""Release accounting modes other than exact: a stripped build and a page found already running.

Its own module: no other exporter may be watching the browser while the "late" page starts.
"""

from __future__ import annotations

from conftest import app_for
from support import run_exporter
from test_releases import POLL, open_releases


async def test_stripped_and_late_pages_say_why_accounting_is_not_exact(go, site, chrome, client) -> None:
    """A build without names, and a page found already running, report their mode; nothing breaks."""
    stripped = app_for(site, go, "releases-stripped")
    normal = app_for(site, go, "releases")
    late_page = await open_releases(client, normal.url)  # running before this exporter starts
    try:
        async with run_exporter("--cdp", chrome, "--poll-interval", POLL) as exporter:
            await exporter.wait_for_log("found 1 running Go instance(s)")
            page = await open_releases(client, stripped.url)
            await page.evaluate("releases.leak(3)")
            created = await page.evaluate("releases.ledger().created")
            await exporter.settled(page.target_id)
            await exporter.settled(late_page.target_id)
            m = await exporter.metrics()
            s_labels = {"page": stripped.url, "module": stripped.module_path}
            assert m.get("gowasm_release_accounting", **s_labels, mode="stripped") == 1
            assert m.get("gowasm_funcs_created_total", **s_labels) == created
            assert m.get("gowasm_funcs_live", **s_labels) is None
            assert m.get("gowasm_funcs_released_total", **s_labels) == 0
            n_labels = {"page": normal.url, "module": normal.module_path}
            assert m.get("gowasm_release_accounting", **n_labels, mode="late_attach") == 1
            await page.close()
            assert await exporter.stop() == 0
    finally:
        await late_page.close()

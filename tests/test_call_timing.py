"""Callback timing in real Chromium: the duration histogram and the long-call counter sampled
systematically (``--call-timing-sample``).

Its own module: the exporter of ``test_endings.py`` times every call, and the shim of whichever
exporter reaches a page first is the one the page runs.
"""

from __future__ import annotations

from special_pages import alias_app
from support import CDPClient, run_exporter
from test_endings import open_endings


async def test_call_timing_is_sampled_systematically(go, site, chrome: str, client: CDPClient) -> None:
    """``--call-timing-sample 4``: calls 4, 8, 12, ... of the instance are timed and count 4 times,
    so the histogram's count is 4 x (calls // 4); of four slow calls in a row exactly one is timed,
    and it counts as 4 long calls."""
    app = alias_app(site, go, "endings", "endings-sampled")  # labels of its own: other tests' tabs may linger
    labels = {"page": app.url, "module": app.module_path}
    async with run_exporter("--cdp", chrome, "--poll-interval", "0.2", "--call-timing-sample", "4") as exporter:
        await exporter.wait_for_log("connected")
        page = await open_endings(client, app.url, ready=True)
        try:
            [instance] = (await exporter.settled(page.target_id))["instances"]
            before = instance["func_calls"]
            for _ in range(4):
                await page.evaluate("endings.busy(60)")
            [instance] = (await exporter.settled(page.target_id))["instances"]
            calls = instance["func_calls"]
            assert calls == before + 4
            m = await exporter.metrics()
            assert m.get("gowasm_func_calls_total", **labels) == calls
            assert m.get("gowasm_func_call_duration_seconds_count", **labels) == 4 * (calls // 4)
            assert m.get("gowasm_func_calls_long_total", **labels) == 4
        finally:
            await page.close()
        assert await exporter.stop() == 0

"""The status page at / in a real headless Chromium: it renders, it updates, and page-controlled
text stays text."""

from __future__ import annotations

import json

from conftest import app_for
from support import CDPClient, Page, run_exporter

HOSTILE = '<img src=x onerror="window.__pwned = 1"><script>window.__pwned = 2</script>'


async def wait_in_page(page: Page, condition: str, timeout_ms: int = 30000) -> object:
    """Resolve when the JS expression ``condition`` is truthy, re-checked on every DOM change."""
    return await page.evaluate(
        f"""new Promise((resolve, reject) => {{
          const check = () => {{ const v = ({condition}); if (v) {{ observer.disconnect(); resolve(v); }} }};
          const observer = new MutationObserver(check);
          observer.observe(document.body, {{ childList: true, subtree: true, characterData: true }});
          setTimeout(() => {{ observer.disconnect(); reject(new Error("timed out: " + {json.dumps(condition)})); }},
                     {timeout_ms});
          check();
        }})""",
        await_promise=True,
    )


def row_text(page_url: str) -> str:
    return (
        "Array.from(document.querySelectorAll('#instances tbody tr'))"
        f".map((r) => r.textContent).find((t) => t.includes({json.dumps(page_url)}))"
    )


async def test_status_page_renders_updates_and_escapes(go, site, chrome, client: CDPClient) -> None:
    """Instances with plots, live updates, and a hostile panic message shown as text, not HTML."""
    app = app_for(site, go, "ledger")
    async with run_exporter("--cdp", chrome, "--poll-interval", "0.2") as exporter:
        await exporter.wait_for_log("connected")
        ledger = await client.open_page(app.url)
        await ledger.evaluate("window.ledgerReady", await_promise=True)
        status = await client.open_page(exporter.base + "/")
        try:
            created = await ledger.evaluate("ledger.stats().funcsCreated")
            await wait_in_page(status, f"({row_text(app.url)} || '').includes('({created})')")
            row = await status.evaluate(row_text(app.url))
            assert "running" in row and "early" in row and "exact" in row
            assert await status.evaluate("document.querySelectorAll('#instances svg').length") >= 3

            await ledger.evaluate("ledger.makeFuncs(7)")
            await wait_in_page(status, f"({row_text(app.url)} || '').includes('({created + 7})')")

            await ledger.evaluate(f"ledger.panic({json.dumps(HOSTILE)})")
            shown = await wait_in_page(
                status, "document.querySelector('#ends pre') && document.querySelector('#ends').textContent"
            )
            assert HOSTILE in shown
            assert await status.evaluate("document.querySelectorAll('#ends img, #ends script').length") == 0
            assert await status.evaluate("window.__pwned === undefined")
            assert await status.evaluate("document.querySelector('#ends b').textContent") == "panic"
        finally:
            await status.close()
            await ledger.close()
        assert await exporter.stop() == 0

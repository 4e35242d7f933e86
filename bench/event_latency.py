"""Event latency: from a panic in the page to the panic being visible on ``/metrics`` and
``/api/panics``.

The exporter runs as a user runs it (subprocess, ``--cdp``, default settings: gauges polled every
second, panics pushed through the binding). A tab of the callbacks bench app panics one Go
instance after another (``bench.panic()`` inside a callback, then ``spawn()`` starts the next
instance of the same module). The page notes the wall-clock time right before the panic; this
script polls the endpoint back to back until the panic shows (``gowasm_panics_total`` grows, or
``/api/panics`` lists it) and takes the difference. Both clocks are the same machine's wall clock;
the page's is coarsened to 0.1 ms. Panics alternate between the two endpoints.

``--background-pages N`` opens N more instrumented tabs (busy: a callback every 100 ms) first, so
the exporter is also polling them while the panics happen.

Run: ``.venv/bin/python bench/event_latency.py [--panics 60] [--background-pages 0] [--json out.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from typing import Any

import harness

PANIC = """
(() => {
  const at = performance.timeOrigin + performance.now();
  bench.panic(%s);
  return at;
})()
"""


def panics_total(text: str) -> float:
    """Sum of every ``gowasm_panics_total`` series (cheaper than a full parse, in the poll loop)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("gowasm_panics_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def wait_visible(exporter: harness.Exporter, endpoint: str, before: float, tag: str, timeout: float) -> float:
    """Poll ``endpoint`` back to back until the panic shows; the wall-clock time it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if endpoint == "/metrics":
            response = await exporter.http.get("/metrics")
            seen = panics_total(response.text) > before
        else:
            response = await exporter.http.get("/api/panics", params={"limit": 1})
            records = response.json()["panics"]
            seen = bool(records) and tag in (records[0].get("value") or "")
        if seen:
            return time.time()
    raise TimeoutError(f"panic {tag} never showed on {endpoint}; log:\n" + "\n".join(exporter.log_lines[-20:]))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    go = harness.ensure_go(args.go)
    site = harness.BenchSite([go], ["callbacks"])
    latencies: dict[str, list[float]] = {"/metrics": [], "/api/panics": []}
    results: dict[str, Any] = {}
    with site.serving():
        async with harness.chromium() as (endpoint, chrome):
            results["machine"] = harness.machine_report(chrome=chrome, go=[go])
            harness.print_header("event latency", results["machine"], vars(args))
            client = await harness.CDPClient.connect(endpoint)
            background: list[harness.Page] = []
            try:
                async with harness.run_exporter("--cdp", endpoint) as exporter:
                    await harness.wait_browsers_up(exporter)
                    for _ in range(args.background_pages):
                        background.append(await harness.open_app(client, site.url(go, "callbacks", "busy=100")))
                    page = await harness.open_app(client, site.url(go, "callbacks"))
                    background.append(page)
                    if await harness.shim_accounting(page) != "exact":
                        raise SystemExit("the page is not instrumented by the exporter")
                    await asyncio.sleep(2)  # every background page polled at least once
                    for k in range(args.panics):
                        target = "/metrics" if k % 2 == 0 else "/api/panics"
                        before = panics_total((await exporter.http.get("/metrics")).text)
                        tag = f"bench-{k}"
                        at_ms = await page.evaluate(PANIC % f'"{tag}"')
                        seen = await wait_visible(exporter, target, before, tag, timeout=10)
                        latencies[target].append((seen - at_ms / 1000) * 1000)
                        print(f"  panic {k + 1} {target}: {latencies[target][-1]:.1f} ms", file=sys.stderr)
                        await page.evaluate("spawn()", await_promise=True)
                        await asyncio.sleep(args.gap)
                    results["exporter_log_tail"] = exporter.log_lines[-5:]
            finally:
                for p in background:
                    await p.close()
                await client.close()
    print(f"\n  panic -> visible, ms ({args.panics} panics, {args.background_pages} background pages)")
    results["latency_ms"] = {}
    for target, values in latencies.items():
        s = harness.summarize(values)
        p99 = harness.percentile(values, 99)
        results["latency_ms"][target] = {**s.as_dict(), "p99": p99}
        verdict = "met" if p99 <= 250 else "MISSED"
        print(f"    {target:<12} p50 {s.median:7.1f}   p99 {p99:7.1f}   max {s.hi:7.1f}   (goal p99 <= 250: {verdict})")
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--panics", type=int, default=60, help="panics in all, alternating endpoints (default 60)")
    p.add_argument("--background-pages", type=int, default=0, help="busy instrumented tabs besides (default 0)")
    p.add_argument("--gap", type=float, default=0.2, help="seconds between panics (default 0.2)")
    p.add_argument("--go", default="1.27.3")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args()
    results = asyncio.run(run(args))
    harness.dump_json(args.json, results)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()

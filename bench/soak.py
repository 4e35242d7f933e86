"""Soak: the exporter's memory over many reloads of a Go WASM page, longer than the CI soak.

``tests/test_soak.py`` runs 2,000 reloads in CI; this runs as many as asked (default 20,000) with
the exporter's default settings, and prints the machine, the exporter's resident memory (``VmRSS``)
and CPU time every ``--sample-every`` reloads, its growth after the warm-up, the reload rate, and
whether every count is exact (each document's start-up funcs counted once, each reload's end kept
in the history or counted as dropped from it). One headless Chromium (the daemon's launcher and
flags), the ledger test app built with one Go toolchain, the exporter as a subprocess (``--cdp``).

Run: ``.venv/bin/python bench/soak.py [--reloads 20000] [--go 1.27.3] [--poll-interval 1]
[--warmup 200] [--sample-every 1000] [--json out.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import harness
from gowasm_demo.server import StaticSite, serve

HISTORY = 100  # the exporter's default --panic-history


async def reload_and_wait(page: harness.Page) -> None:
    loaded = page.client.expect(lambda e: e.method == "Page.loadEventFired" and e.session_id == page.session.session_id)
    await page.session.send("Page.reload")
    await asyncio.wait_for(loaded, 60)
    await page.evaluate("window.ledgerReady", await_promise=True)


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    go = harness.ensure_go(args.go)
    site = StaticSite({})
    wasm = go.build_wasm(harness.REPO / "tests" / "apps" / "ledger", harness.REPO / ".cache" / "bench" / "soak.wasm")
    site.add("/wasm_exec.js", go.wasm_exec_js)
    site.add("/soak/main.wasm", wasm)
    site.add("/soak/index.html", harness.REPO / "tests" / "apps" / "ledger" / "index.html")
    with serve(site):
        url = f"{site.base_url}/soak/index.html"
        labels = {"page": url, "module": "/soak/main.wasm"}
        async with harness.chromium() as (endpoint, version):
            report = harness.machine_report(chrome=version, go=[go])
            settings = {k: v for k, v in vars(args).items() if k != "json"}
            harness.print_header("soak: reloads of a Go WASM page", report, settings)
            client = await harness.CDPClient.connect(endpoint)
            async with harness.run_exporter("--cdp", endpoint, "--poll-interval", str(args.poll_interval)) as exporter:
                await exporter.wait_for_log("connected")
                page = await client.open_page(url)
                await page.evaluate("window.ledgerReady", await_promise=True)
                start_funcs = await page.evaluate("ledger.stats().funcsCreated")
                pid = exporter.proc.pid
                samples: list[dict[str, float]] = []
                began = time.monotonic()
                print(f"  {'reloads':>8} {'rss MB':>8} {'cpu s':>8} {'reloads/s':>10}")
                for n in range(1, args.reloads + 1):
                    await reload_and_wait(page)
                    if n == args.warmup or n % args.sample_every == 0 or n == args.reloads:
                        sample = harness.process_sample(pid)
                        rate = n / (time.monotonic() - began)
                        samples.append({"reloads": n, "rss": sample.rss, "cpu": sample.cpu, "rate": rate})
                        print(f"  {n:>8} {sample.rss / 1e6:>8.2f} {sample.cpu:>8.1f} {rate:>10.1f}")
                        sys.stdout.flush()
                await exporter.settled(page.target_id)
                metrics = await exporter.metrics()
                await page.close()
                await exporter.stop()
            await client.close()

    warm = next(s for s in samples if s["reloads"] == args.warmup)
    last = samples[-1]
    funcs = metrics.get("gowasm_funcs_created_total", **labels)
    dropped = metrics.get("gowasm_exporter_dropped_events_total", reason="history_full")
    result = {
        "machine": report,
        "settings": settings,
        "samples": samples,
        "rss_after_warmup_bytes": warm["rss"],
        "rss_end_bytes": last["rss"],
        "growth_after_warmup_bytes": last["rss"] - warm["rss"],
        "growth_per_1000_reloads_bytes": (last["rss"] - warm["rss"]) * 1000 / max(1, args.reloads - args.warmup),
        "reloads_per_second": last["rate"],
        "exporter_cpu_seconds": last["cpu"],
        "funcs_exact": funcs == start_funcs * (args.reloads + 1),
        "ends_dropped_from_history": dropped,
        "ends_expected_dropped": args.reloads - HISTORY,
        "ends_exact": dropped == args.reloads - HISTORY,
    }
    print(
        f"  growth after warm-up: {result['growth_after_warmup_bytes'] / 1e6:.2f} MB "
        f"({result['growth_per_1000_reloads_bytes'] / 1e3:.1f} kB per 1,000 reloads); "
        f"counts exact: funcs {result['funcs_exact']} ({funcs:.0f} = {start_funcs} x {args.reloads + 1}?), "
        f"ends {result['ends_exact']} ({dropped:.0f} dropped from the history = {args.reloads} - {HISTORY}?)"
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reloads", type=int, default=20000)
    parser.add_argument("--go", default="1.27.3", help="Go toolchain that builds the page's module")
    parser.add_argument("--poll-interval", type=float, default=1.0, help="the exporter's (default: its default)")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--sample-every", type=int, default=1000)
    parser.add_argument("--json", metavar="PATH", help="also write the result as JSON")
    args = parser.parse_args()
    if not 0 < args.warmup < args.reloads:
        parser.error("--warmup must be between 0 and --reloads")
    result = asyncio.run(soak(args))
    harness.dump_json(args.json, result)
    return 0 if result["funcs_exact"] and result["ends_exact"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""Scale: the exporter's own cost as the number of instrumented pages grows, and the naive way's.

One headless Chromium; tabs of the callbacks bench app (Go 1.27: small; each calls into Go every
``--busy`` ms) are opened while the exporter runs (subprocess, ``--cdp``, default settings: every
page polled once a second), so each is instrumented from its first script, as in production.
At each level (default 1, 10, 50, 100 tabs), after the polls settle:

* the exporter's CPU share over a window (``/proc/PID/stat`` deltas, user + system, as a fraction
  of one core), its RSS (``VmRSS``) and peak RSS (``VmHWM``);
* the whole browser's CPU share over the same window (``SystemInfo.getProcessInfo``): what the
  polling costs on the browser's side;
* ``/metrics`` latency over back-to-back scrapes (client side, p50/p99), after the window;
* with ``--naive`` (the default): the exporter is stopped and ``bench/naive_poller.py`` (the way a
  user would do it: ``Runtime.evaluate`` + ``Performance.getMetrics`` per page per second) runs
  for the same window on the same tabs; then the exporter starts again (it re-attaches the tabs;
  their shim, probes and counters are still in place).

``--scrape-every S`` plays Prometheus: ``/metrics`` is scraped every S seconds for the whole life of
each exporter (its cost is in the exporter's CPU). ``--poll-on-scrape`` runs the exporter with
that flag: each page is polled once per scrape period, just before the scrape (use it with
``--scrape-every``, and ``--scrapes 0``: back-to-back latency scrapes would teach the exporter a
period of half a second).

``--baseline DIR`` measures a second exporter, another checkout's (a ``git worktree`` of the
previous commit), on the same tabs in the same run: a change to the daemon against what it
replaces. ``--rounds N`` repeats every configuration's window N times per level, in alternating
order, and reports the medians (every window is kept in ``--json``).

``--push`` runs the exporter in push mode (``--push``: each page sends its snapshot a second
after its Go program changed something, and is polled every 10 s); with the default ``--busy``
every tab changes all the time, the worst case for it; ``--busy 0`` leaves the tabs idle.

Run: ``.venv/bin/python bench/scale.py [--pages 1 10 50 100] [--window 20] [--no-naive] [--json out.json]``,
``... --pages 100 --baseline DIR --rounds 2`` for a change side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import harness


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


async def cpu_window(pid: int, client: harness.CDPClient, seconds: float) -> dict[str, float]:
    """CPU share (of one core) of ``pid`` and of the whole browser over ``seconds``."""
    p0, b0 = harness.process_sample(pid), await harness.browser_cpu_seconds(client)
    await asyncio.sleep(seconds)
    p1, b1 = harness.process_sample(pid), await harness.browser_cpu_seconds(client)
    elapsed = p1.at - p0.at
    return {
        "cpu_share": (p1.cpu - p0.cpu) / elapsed,
        "browser_cpu_share": (b1 - b0) / elapsed,
        "rss_bytes": p1.rss,
        "peak_rss_bytes": peak_rss(pid),
    }


async def start_exporter(
    stack: contextlib.AsyncExitStack, exporter_args: tuple[str, ...], scrape_every: float, source: str | None = None
) -> harness.Exporter:
    """An exporter connected to the browser, scraped every ``scrape_every`` s until ``stack`` closes.

    ``source``: another checkout whose ``daemon/`` (and ``instrument/``) to run instead of this one.
    """
    env = None if source is None else {"PYTHONPATH": str(Path(source).resolve() / "daemon")}
    exporter = await stack.enter_async_context(harness.run_exporter(*exporter_args, env=env))
    await harness.wait_browsers_up(exporter)
    await stack.enter_async_context(harness.scraping(exporter, scrape_every))
    return exporter


class CurrentExporter:
    """This checkout's exporter: running while tabs open (so that they are instrumented from their
    first script) and while it is measured, stopped while another configuration is."""

    def __init__(self, exporter_args: tuple[str, ...], scrape_every: float) -> None:
        self._args = exporter_args
        self._scrape_every = scrape_every
        self._stack = contextlib.AsyncExitStack()
        self.exporter: harness.Exporter | None = None

    async def start(self) -> harness.Exporter:
        """The running exporter, started if it is not."""
        if self.exporter is None:
            self._stack = contextlib.AsyncExitStack()
            self.exporter = await start_exporter(self._stack, self._args, self._scrape_every)
        return self.exporter

    async def stop(self) -> None:
        await self._stack.aclose()
        self.exporter = None


async def baseline_window(
    exporter_args: tuple[str, ...], args: argparse.Namespace, client: harness.CDPClient, scrapes: int
) -> tuple[dict[str, float], dict[str, float]]:
    """The ``--baseline`` checkout's exporter on the same tabs: its CPU window, then ``scrapes``
    back-to-back ``/metrics`` requests."""
    async with contextlib.AsyncExitStack() as stack:
        before = await start_exporter(stack, exporter_args, args.scrape_every, args.baseline)
        await asyncio.sleep(args.settle)  # it attaches the tabs
        return await cpu_window(before.proc.pid, client, args.window), await scrape_latency(before, scrapes)


async def scrape_latency(exporter: harness.Exporter, scrapes: int) -> dict[str, float]:
    if scrapes == 0:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "bytes": 0}
    times = []
    size = 0
    for _ in range(scrapes):
        t = time.perf_counter()
        response = await exporter.http.get("/metrics")
        times.append((time.perf_counter() - t) * 1000)
        size = len(response.content)
    return {"p50_ms": harness.percentile(times, 50), "p99_ms": harness.percentile(times, 99), "bytes": size}


async def reported_pages(exporter: harness.Exporter) -> int:
    """Pages the exporter reports a running Go instance for."""
    count = 0
    for browser in (await exporter.json("/api/targets"))["browsers"]:
        count += sum(1 for t in browser["targets"] if any(i["running"] for i in t["instances"]))
    return count


async def naive_window(endpoint: str, client: harness.CDPClient, args: argparse.Namespace) -> dict[str, float]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(harness.BENCH / "naive_poller.py"),
        "--cdp",
        endpoint,
        "--interval",
        "1",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        await asyncio.sleep(args.settle)  # it attaches every tab first
        window = await cpu_window(proc.pid, client, args.window)
    finally:
        proc.terminate()
        out, _ = await proc.communicate()
    window.update(json.loads(out.decode().strip().splitlines()[-1]))
    return window


async def run(args: argparse.Namespace) -> dict[str, Any]:
    go = harness.ensure_go(args.go)
    site = harness.BenchSite([go], ["callbacks"])
    levels: list[dict[str, Any]] = []
    results: dict[str, Any] = {"levels": levels}
    with site.serving():
        url = site.url(go, "callbacks", f"busy={args.busy}")
        async with harness.chromium() as (endpoint, chrome):
            results["machine"] = harness.machine_report(chrome=chrome, go=[go])
            harness.print_header("scale", results["machine"], vars(args))
            client = await harness.CDPClient.connect(endpoint)
            pages: list[harness.Page] = []
            configs = ["exporter", *(["baseline"] if args.baseline else []), *(["naive"] if args.naive else [])]
            exporter_args = (
                "--cdp",
                endpoint,
                *(("--push",) if args.push else ()),
                *(("--poll-on-scrape",) if args.poll_on_scrape else ()),
            )
            current = CurrentExporter(exporter_args, args.scrape_every)
            try:
                await current.start()
                for n in args.pages:
                    while len(pages) < n:
                        pages.append(await harness.open_app(client, url))
                    await asyncio.sleep(args.settle)
                    exporter = await current.start()
                    level: dict[str, Any] = {"pages": n, "reported": await reported_pages(exporter)}
                    runs: dict[str, list[dict[str, float]]] = {name: [] for name in configs}
                    for round_ in range(args.rounds):
                        # Alternate the order, so that no configuration always runs first.
                        for name in configs if round_ % 2 == 0 else configs[::-1]:
                            if name == "exporter":
                                restarted = current.exporter is None
                                exporter = await current.start()
                                if restarted:
                                    await asyncio.sleep(args.settle)  # it re-attaches the tabs
                                runs[name].append(await cpu_window(exporter.proc.pid, client, args.window))
                                if "metrics" not in level:
                                    level["metrics"] = await scrape_latency(exporter, args.scrapes)
                                continue
                            await current.stop()  # the others run without it
                            if name == "baseline":
                                scrapes = 0 if "baseline_metrics" in level else args.scrapes
                                window, metrics = await baseline_window(exporter_args, args, client, scrapes)
                                runs[name].append(window)
                                level.setdefault("baseline_metrics", metrics)
                            else:
                                runs[name].append(await naive_window(endpoint, client, args))
                    for name, windows in runs.items():
                        level[name] = median_window(windows)
                    await current.start()  # the next level's tabs open while it runs
                    levels.append(level)
                    print_level(level)
            finally:
                await current.stop()
                for page in pages:
                    await page.close()
                await client.close()
    summary(levels)
    return results


def median_window(windows: list[dict[str, float]]) -> dict[str, Any]:
    """The median of each figure over a configuration's windows (all of them kept in ``windows``)."""
    keys = [k for k, v in windows[0].items() if isinstance(v, (int, float))]
    merged: dict[str, Any] = {k: statistics.median(w[k] for w in windows) for k in keys}
    merged["windows"] = windows
    return merged


def print_level(level: dict[str, Any]) -> None:
    e, m = level["exporter"], level["metrics"]
    line = (
        f"  {level['pages']:>4} pages ({level['reported']} reported): "
        f"exporter CPU {e['cpu_share'] * 100:5.2f}% of a core, "
        f"RSS {e['rss_bytes'] / 2**20:6.1f} MiB (peak {e['peak_rss_bytes'] / 2**20:.1f}), browser CPU "
        f"{e['browser_cpu_share'] * 100:5.1f}%, /metrics p50 {m['p50_ms']:.1f} ms p99 {m['p99_ms']:.1f} ms "
        f"({m['bytes'] / 1024:.0f} KiB)"
    )
    if "baseline" in level:
        b = level["baseline"]
        line += (
            f"\n        baseline: CPU {b['cpu_share'] * 100:5.2f}% of a core, RSS {b['rss_bytes'] / 2**20:6.1f} MiB, "
            f"browser CPU {b['browser_cpu_share'] * 100:5.1f}%"
        )
        if "baseline_metrics" in level:
            bm = level["baseline_metrics"]
            line += f", /metrics p50 {bm['p50_ms']:.1f} ms p99 {bm['p99_ms']:.1f} ms"
    if "naive" in level:
        nv = level["naive"]
        line += (
            f"\n        naive poller: CPU {nv['cpu_share'] * 100:5.2f}% of a core, browser CPU "
            f"{nv['browser_cpu_share'] * 100:5.1f}% ({nv['pages']} pages, {nv['rounds']} rounds)"
        )
    windows = {name: level[name]["windows"] for name in ("exporter", "baseline", "naive") if name in level}
    if any(len(w) > 1 for w in windows.values()):
        line += "\n        windows (CPU % of a core): " + "; ".join(
            f"{name} " + " ".join(f"{w['cpu_share'] * 100:.2f}" for w in ws) for name, ws in windows.items()
        )
    print(line, flush=True)


def ratio(a: float, b: float) -> float:
    """``a / b``; NaN when a window too short for the CPU clock's 10 ms ticks measured ``b`` as 0."""
    return a / b if b else float("nan")


def summary(levels: list[dict[str, Any]]) -> None:
    print("\n  per page (CPU share of one core / pages); ratio = naive / exporter")
    print(f"  {'pages':>6}{'exporter':>12}{'naive':>12}{'ratio':>8}{'browser (exp)':>16}{'browser (naive)':>17}")
    print("  (the medians over --rounds windows of each)")
    for level in levels:
        n = level["pages"]
        e = level["exporter"]["cpu_share"] / n * 100
        line = f"  {n:>6}{e:>11.4f}%"
        if "naive" in level:
            nv = level["naive"]["cpu_share"] / n * 100
            be = level["exporter"]["browser_cpu_share"] / n * 100
            bn = level["naive"]["browser_cpu_share"] / n * 100
            line += f"{nv:>11.4f}%{ratio(nv, e):>8.2f}{be:>15.3f}%{bn:>16.3f}%"
            level["naive_per_page_ratio"] = ratio(nv, e)
        if "baseline" in level:
            b = level["baseline"]["cpu_share"] / n * 100
            line += f"   baseline {b:.4f}% (baseline / exporter {ratio(b, e):.2f}"
            if "naive" in level:
                line += f", naive / baseline {ratio(level['naive']['cpu_share'] / n * 100, b):.2f}"
            line += ")"
        print(line)
    last = levels[-1]
    if last["pages"] >= 100:
        e, m = last["exporter"], last["metrics"]
        checks = [("CPU <= 10% of one core", e["cpu_share"] <= 0.10), ("RSS <= 150 MB", e["rss_bytes"] <= 150e6)]
        if m["bytes"]:  # --scrapes 0: no latency measured
            checks.append(("/metrics p99 <= 50 ms", m["p99_ms"] <= 50))
        print("  goals at 100 pages: " + ", ".join(f"{name}: {'met' if ok else 'MISSED'}" for name, ok in checks))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pages", type=int, nargs="+", default=[1, 10, 50, 100], help="levels (default 1 10 50 100)")
    p.add_argument("--window", type=float, default=20, help="CPU window in seconds (default 20)")
    p.add_argument("--settle", type=float, default=5, help="seconds before each window (default 5)")
    p.add_argument("--scrapes", type=int, default=200, help="/metrics requests per level (default 200)")
    p.add_argument("--busy", type=int, default=100, help="each tab calls into Go every BUSY ms (default 100)")
    p.add_argument("--naive", action=argparse.BooleanOptionalAction, default=True, help="compare the naive poller")
    p.add_argument(
        "--push",
        action="store_true",
        help="run the exporter in push mode (pages push snapshots on change, polled every 10 s)",
    )
    p.add_argument("--poll-on-scrape", action="store_true", help="run the exporter with --poll-on-scrape")
    p.add_argument("--scrape-every", type=float, default=0, help="scrape /metrics every S seconds (default: never)")
    p.add_argument(
        "--baseline",
        metavar="DIR",
        help="also measure the exporter of another checkout (e.g. a git worktree of the previous commit)",
    )
    p.add_argument("--rounds", type=int, default=1, help="windows of each configuration per level (default 1)")
    p.add_argument("--go", default="1.27.3")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args()
    results = asyncio.run(run(args))
    harness.dump_json(args.json, results)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()

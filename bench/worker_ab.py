"""The shim's per-func and per-call cost, A/B inside one tab: the configurations side by side in
dedicated workers of the same page, taking turns.

``shim_overhead.py`` compares tabs with and without the shim, and on this 2-core VM the spread
between tabs (Go's heap layout, the JIT's decisions, where the renderer lands) is ±3-8 points:
wider than the 3 % goal on FuncOf+Release. ``resume_hook.py`` takes the tab out of the round-trip
comparison by swapping ``_resume`` inside one tab, but the FuncOf+Release path runs through
load-time probes, which are compiled into the module: it cannot be switched off in a running
instance. So here each configuration gets its own dedicated worker in one tab
(``bench/apps/callbacks/worker.js``): the worker evaluates the configuration's shim in its global
scope first (as the daemon does in a worker), then the toolchain's own ``wasm_exec.js``, and
instantiates the callbacks app from its bytes (the same loading for every configuration, so the
comparison is of the shim alone). Then, round after round, every worker runs one batch (``n``
FuncOf+Release cycles, or ``n`` round trips) in a shuffled order; each batch is timed inside the
worker with ``performance.now()`` and by the CPU time of the thread that ran it (the busiest
thread of the renderer during the batch, ``/proc/PID/task/TID/schedstat``: blind to waiting for a
core). A round's ratio is each configuration's batch over ``none``'s; per tab, the median over its
rounds; reported, the median and IQR over tabs, and the fastest batch of each worker against
``none``'s.

Configurations are those of ``shim_overhead.py`` that are shims, including ``patched*`` from
``--shim-dir`` for a change before and after in one run; ``none`` is a worker without a shim, and
``none-2`` a second one: the control, whose ratio to ``none`` is the spread between two identical
instances. ``--extra NAME=DIR`` (repeatable) adds a worker with the shim of a patched copy of
``instrument/``: several candidate changes side by side. The workers are created in a shuffled
order in each tab.

Run: ``.venv/bin/python bench/worker_ab.py [--tabs 5] [--rounds 15] [--go 1.21.13] [--json out.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
from pathlib import Path
from typing import Any

import harness
from shim_overhead import CONFIGS, PATCHED, shim_variant

KINDS = {"funcof": "FuncOf+Release cycle", "roundtrip": "JS->Go round trip"}

START = """
(async () => {
  const shims = %(shims)s;
  window.abWorkers = {};
  window.abRun = (name, kind, n) => new Promise((resolve, reject) => {
    const worker = window.abWorkers[name];
    worker.onmessage = (e) => (e.data.ok ? resolve(e.data) : reject(new Error(e.data.error)));
    worker.postMessage({ op: "batch", kind, n });
  });
  const out = {};
  for (const [name, shim] of Object.entries(shims)) {
    const worker = new Worker("worker.js");
    window.abWorkers[name] = worker;
    out[name] = await new Promise((resolve, reject) => {
      worker.onmessage = (e) => (e.data.ok ? resolve(e.data.accounting) : reject(new Error(e.data.error)));
      worker.onerror = (e) => reject(new Error(e.message));
      worker.postMessage({ op: "start", shim });
    });
  }
  return out;
})()
"""


def batch_call(name: str, kind: str, n: int) -> str:
    return f"abRun({json.dumps(name)}, {json.dumps(kind)}, {n})"


def threads_cpu_ns(pids: list[int]) -> dict[tuple[int, str], int]:
    """CPU time of every thread of the given processes, in ns (``/proc/PID/task/TID/schedstat``)."""
    out: dict[tuple[int, str], int] = {}
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                out[(pid, task.name)] = int((task / "schedstat").read_text().split()[0])
    return out


async def measure_tab(
    client: harness.CDPClient,
    url: str,
    shims: dict[str, str | None],
    args: argparse.Namespace,
    rng: random.Random,
) -> dict[str, dict[str, list[dict[str, float]]]]:
    """Per kind and configuration, the batches of one tab: [{wall_us, cpu_us}, ...] per round."""
    extras = {e.partition("=")[0] for e in args.extra}
    page = await harness.open_app(client, url)
    try:
        created = list(shims)
        rng.shuffle(created)  # the order of creation must not favour a configuration
        accounting = await page.evaluate(
            START % {"shims": json.dumps({n: shims[n] for n in created})}, await_promise=True
        )
        for name, found in accounting.items():
            expect = None if shims[name] is None else "unsupported" if "no-probes" in name else "exact"
            if name in extras:
                expect = found  # a candidate change: whatever its instrumentation is
            if found != expect:
                raise SystemExit(f"worker {name}: expected its instrumentation to be {expect!r}, found {found!r}")
        names = list(shims)
        for kind in args.kinds:  # warm up every worker's JIT, Go stack and the shim's structures
            for name in names:
                for _ in range(2):
                    await page.evaluate(batch_call(name, kind, args.n // 5), await_promise=True)
        pids = await harness.renderer_pids(client)
        batches: dict[str, dict[str, list[dict[str, float]]]] = {k: {n: [] for n in names} for k in args.kinds}
        for _ in range(args.rounds):
            for kind in args.kinds:
                order = names[:]
                rng.shuffle(order)
                for name in order:
                    before = threads_cpu_ns(pids)
                    result = await page.evaluate(batch_call(name, kind, args.n), await_promise=True)
                    after = threads_cpu_ns(pids)
                    ran = max(after[t] - before.get(t, 0) for t in after)  # the worker's thread
                    batches[kind][name].append({"wall_us": result["ms"] * 1000 / args.n, "cpu_us": ran / 1000 / args.n})
        return batches
    finally:
        await page.close()
        await asyncio.sleep(args.cooldown)


def round_ratios(tab: dict[str, list[dict[str, float]]], name: str, metric: str) -> list[float]:
    """Each round's batch of ``name`` over ``none``'s in the same round."""
    return [b[metric] / a[metric] for b, a in zip(tab[name], tab["none"], strict=True)]


def percent(s: harness.Summary) -> str:
    return f"{(s.median - 1) * 100:+6.2f}% (IQR {(s.p25 - 1) * 100:+.2f} .. {(s.p75 - 1) * 100:+.2f})"


def report(kind: str, tabs: list[dict[str, list[dict[str, float]]]]) -> dict[str, Any]:
    """Per configuration: us per op (median over tabs of each tab's fastest batch); the overhead
    against ``none`` per round, median within each tab, then median and IQR over tabs; and the
    fastest-batch ratio per tab, median and IQR over tabs."""
    out: dict[str, Any] = {}
    names = list(tabs[0])
    for metric in ("cpu_us", "wall_us"):
        print(f"\n  {KINDS[kind]}, {'worker thread CPU' if metric == 'cpu_us' else 'wall (performance.now)'}:"
              " us per op; overhead vs none: per-round ratios (median in each tab; median, IQR over tabs);"
              " fastest batches (median over tabs)")  # fmt: skip
        for name in names:
            fastest = [min(b[metric] for b in tab[name]) for tab in tabs]
            row: dict[str, Any] = {"fastest_us": harness.summarize(fastest).as_dict()}
            line = f"    {name:<18}{harness.summarize(fastest).median:8.3f} us"
            if name != "none":
                per_tab = [harness.summarize(round_ratios(tab, name, metric)).median for tab in tabs]
                fastest_ratio = [
                    min(b[metric] for b in tab[name]) / min(a[metric] for a in tab["none"]) for tab in tabs
                ]
                r, f = harness.summarize(per_tab), harness.summarize(fastest_ratio)
                row.update(round_ratio=r.as_dict(), fastest_ratio=f.as_dict(), round_ratio_tabs=per_tab)
                line += f"   rounds {percent(r)}   fastest {percent(f)}"
            out.setdefault(name, {})[metric] = row
            print(line)
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    go = harness.ensure_go(args.go)
    shims: dict[str, str | None] = {"none": None}
    shims.update({c: None if c == "none-2" else shim_variant(c, args.shim_dir) for c in args.configs})
    for extra in args.extra:
        name, _, root = extra.partition("=")
        shims[name] = harness.compose_shim(Path(root))
    site = harness.BenchSite([go], ["callbacks"])
    rng = random.Random(args.seed)
    results: dict[str, Any] = {}
    with site.serving():
        async with harness.chromium() as (endpoint, chrome):
            results["machine"] = harness.machine_report(chrome=chrome, go=[go])
            harness.print_header("in-tab A/B in workers", results["machine"], vars(args))
            client = await harness.CDPClient.connect(endpoint)
            try:
                tabs = []
                for tab in range(args.tabs):
                    batches = await measure_tab(client, site.url(go, "callbacks"), shims, args, rng)
                    tabs.append(batches)
                    for kind, per in batches.items():
                        print(
                            f"  tab {tab + 1} {kind}: "
                            + "  ".join(f"{n} {min(b['cpu_us'] for b in v):.3f}" for n, v in per.items()),
                            file=sys.stderr,
                        )
                results["tabs"] = tabs
                results["report"] = {kind: report(kind, [t[kind] for t in tabs]) for kind in args.kinds}
            finally:
                await client.close()
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tabs", type=int, default=5, help="tabs (default 5), each with one worker per configuration")
    p.add_argument("--rounds", type=int, default=15, help="batches per worker and kind (default 15)")
    p.add_argument("--n", type=int, default=10_000, help="cycles or round trips per batch (default 10000)")
    p.add_argument("--kinds", nargs="+", choices=list(KINDS), default=["funcof"])
    p.add_argument("--go", default="1.21.13", help="Go version (default 1.21.13)")
    p.add_argument(
        "--configs",
        nargs="+",
        choices=["none-2"] + [c for c in CONFIGS + PATCHED if c.startswith(("shim", "patched"))],
        default=["none-2", "shim", "shim-no-per-func", "shim-no-probes"],
    )
    p.add_argument("--shim-dir", type=Path, help="a patched copy of instrument/ for the patched* configurations")
    p.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="one more worker, with the shim composed from DIR (a patched copy of instrument/); repeatable",
    )
    p.add_argument("--cooldown", type=float, default=1.0, help="seconds between tabs (default 1)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args()
    if any(c.startswith("patched") for c in args.configs) and args.shim_dir is None:
        p.error("patched* configurations need --shim-dir")
    results = asyncio.run(run(args))
    harness.dump_json(args.json, results)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()

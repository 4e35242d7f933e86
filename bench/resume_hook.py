"""The round-trip hook, A/B inside one tab: what the shim adds to each JS->Go callback.

``shim_overhead.py`` compares tabs with and without the shim; on a busy machine the spread
between tabs (Go's heap, the JIT, the renderer's placement) is ±10-20 %, too wide to resolve a
1 % goal. This benchmark takes the tab out of the comparison: in one tab with the shim, it loads a
second, unhooked copy of the toolchain's own ``wasm_exec.js`` (evaluated with a private
``globalThis`` so that the page's ``Go`` stays as it is) and takes its ``Go.prototype._resume``,
the original the shim wraps. Batches of round trips (``bench.add(i, 1)``) then alternate between
the hooked ``_resume`` (the prototype's) and the original (set as the ``go`` object's own
property, which the wrapper's ``go._resume()`` finds first), in a shuffled order per pair, and
the overhead of each pair is hooked / original - 1, from the main thread's CPU time
(``/proc/PID/schedstat``) and from ``performance.now()`` in the page.

First, the hook's own cost, without Go's share: the hooked and the original ``_resume`` called a
million times each on a stand-in Go object whose ``resume()`` export does nothing, fastest of five
loops, against the page's real round trip; and the callback timer alone (the shim's
``CallTiming``, timing every call and one in 16). These are precise (IQR well under 0.01 us).

Everything else the shim does is the same in both halves (the func wrappers, load-time probes,
polling), so this is the hook's cost alone: counting, attribution, the long-call clock and the
sampled duration timer. Configurations are the shim variants of ``shim_overhead.py``.

Run: ``.venv/bin/python bench/resume_hook.py [--tabs 5] [--pairs 15] [--go 1.27.3] [--json out.json]``
(``--pairs 0``: the hook's cost and the timer alone, without the noisy A/B batches.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
from typing import Any

import harness
from shim_overhead import shim_variant

CONFIGS = ("shim", "shim-timing-all", "shim-timing-64", "shim-no-timing", "shim-no-probes")

# A second, unhooked wasm_exec.js: its `globalThis.Go = class ...` lands in `captured`, reads go
# to the real global. The original _resume is then kept for the batches.
LOAD_ORIGINAL = """
(async () => {
  const source = await (await fetch("../wasm_exec.js")).text();
  const captured = {};
  const scope = new Proxy(globalThis, {
    get: (target, key) => (key in captured ? captured[key] : Reflect.get(target, key)),
    set: (target, key, value) => { captured[key] = value; return true; },
    has: (target, key) => key in captured || key in target,
  });
  new Function("globalThis", source)(scope);
  const original = captured.Go.prototype._resume;
  if (typeof original !== "function" || original === Go.prototype._resume) {
    throw new Error("no unhooked _resume");
  }
  window.benchOriginalResume = original;
  return true;
})()
"""
# The hook's own cost, without Go: the hooked and the original _resume called on a stand-in Go
# object whose instance's resume() does nothing (so each call is the glue alone), alternately,
# fastest of 5 loops each; and the page's real round trip for scale.
HOOK_COST = """
(() => {
  const hooked = Go.prototype._resume;
  const original = window.benchOriginalResume;
  const standIn = Object.create(Go.prototype);
  standIn.exited = false;
  standIn._inst = { exports: { resume() {}, mem: go._inst.exports.mem } };
  const event = { id: 1, this: null, args: [] };
  const N = %(n)d;
  const out = { original: Infinity, hooked: Infinity, round_trip: Infinity };
  for (let rep = 0; rep < 5; rep++) {
    for (const [name, fn] of [["original", original], ["hooked", hooked]]) {
      const t0 = performance.now();
      for (let i = 0; i < N; i++) {
        standIn._pendingEvent = event;
        fn.call(standIn);
      }
      out[name] = Math.min(out[name], ((performance.now() - t0) * 1000) / N);
    }
    const t0 = performance.now();
    for (let i = 0; i < 20000; i++) bench.add(i, 1);
    out.round_trip = Math.min(out.round_trip, ((performance.now() - t0) * 1000) / 20000);
  }
  return out;
})()
"""
BATCH = """
(() => {
  if (%(original)s) { go._resume = window.benchOriginalResume; } else { delete go._resume; }
  const t = performance.now();
  for (let i = 0; i < %(n)d; i++) bench.add(i, 1);
  const ms = performance.now() - t;
  delete go._resume;
  return ms;
})()
"""


async def measure_tab(
    client: harness.CDPClient,
    url: str,
    config: str,
    shim: str,
    args: argparse.Namespace,
    rng: random.Random,
    tab: int,
    hook_costs: list[dict[str, Any]],
) -> list[dict[str, float]]:
    page = await harness.open_app(client, url, shim=shim)
    try:
        assert await page.evaluate(LOAD_ORIGINAL, await_promise=True) is True
        cost = await page.evaluate(HOOK_COST % {"n": args.component_n})
        hook_costs.append({"config": config, **cost})
        if args.pairs == 0:
            return []
        for original in (False, True):  # warm both paths up
            await page.evaluate(BATCH % {"original": "true" if original else "false", "n": args.n})
        pids = await harness.renderer_pids(client)
        pairs = []
        for _ in range(args.pairs):
            sample: dict[str, dict[str, float]] = {}
            order = [False, True]
            rng.shuffle(order)
            for original in order:
                before = {pid: harness.main_thread_cpu_ns(pid) for pid in pids}
                ms = await page.evaluate(BATCH % {"original": "true" if original else "false", "n": args.n})
                ran = max(harness.main_thread_cpu_ns(pid) - before[pid] for pid in pids)
                sample["original" if original else "hooked"] = {"wall": ms * 1000 / args.n, "cpu": ran / 1000 / args.n}
            pairs.append(
                {
                    "cpu_us": sample["hooked"]["cpu"],
                    "cpu_original_us": sample["original"]["cpu"],
                    "cpu_ratio": sample["hooked"]["cpu"] / sample["original"]["cpu"],
                    "wall_ratio": sample["hooked"]["wall"] / sample["original"]["wall"],
                    "tab": tab,
                }
            )
        return pairs
    finally:
        await page.close()
        await asyncio.sleep(args.cooldown)


# The timer alone, in a page: CallTiming.begin()/end() per call (the shim's own class, composed
# with each sampling setting), against an empty loop, and the page's round trip for scale.
COMPONENT = """
(() => {
  const timings = { %(timings)s };
  const N = %(n)d;
  const out = {};
  for (let rep = 0; rep < 5; rep++) {
    let t0 = performance.now();
    let sink = 0;
    for (let i = 0; i < N; i++) { sink += i & 1; }
    const empty = performance.now() - t0;
    for (const [name, CallTiming] of Object.entries(timings)) {
      const timing = new CallTiming();
      t0 = performance.now();
      for (let i = 0; i < N; i++) { const token = timing.begin(); sink += i & 1; timing.end(token); }
      const us = ((performance.now() - t0 - empty) * 1000) / N;
      out[name] = Math.min(out[name] ?? Infinity, us);
    }
    t0 = performance.now();
    for (let i = 0; i < 20000; i++) bench.add(i, 1);
    out.round_trip = Math.min(out.round_trip ?? Infinity, ((performance.now() - t0) * 1000) / 20000);
    window.benchSink = sink;
  }
  return out;
})()
"""
SAMPLES = (1, 16)


def timing_class(sample: int) -> str:
    body = harness.shim_internals(names=("CallTiming",))
    return body.replace('"maxInstances": 64}', f'"maxInstances": 64, "timingSample": {sample}}}', 1) + ".CallTiming"


async def measure_component(client: harness.CDPClient, url: str, args: argparse.Namespace) -> dict[str, float]:
    page = await harness.open_app(client, url)
    try:
        timings = ", ".join(f'"sample {n}": {timing_class(n)}' for n in SAMPLES)
        return await page.evaluate(COMPONENT % {"timings": timings, "n": args.component_n})
    finally:
        await page.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    go = harness.ensure_go(args.go)
    site = harness.BenchSite([go], ["callbacks"])
    shims = {c: shim_variant(c, None) for c in args.configs}
    rng = random.Random(1)
    results: dict[str, Any] = {"configs": {}}
    with site.serving():
        async with harness.chromium() as (endpoint, chrome):
            results["machine"] = harness.machine_report(chrome=chrome, go=[go])
            harness.print_header("the round-trip hook, A/B in one tab", results["machine"], vars(args))
            client = await harness.CDPClient.connect(endpoint)
            try:
                url = site.url(go, "callbacks")
                components = [await measure_component(client, url, args) for _ in range(args.tabs)]
                results["component"] = components
                print("\n  the timer alone: us per call (fastest of 5 loops per tab), and its share of the round trip")
                trip = harness.summarize([c["round_trip"] for c in components]).median
                for name in [f"sample {n}" for n in SAMPLES]:
                    us = harness.summarize([c[name] for c in components])
                    share = harness.summarize([c[name] / c["round_trip"] for c in components])
                    print(
                        f"    {name:<10} {us.median:.3f} us (IQR {us.p25:.3f} .. {us.p75:.3f})"
                        f"   {share.median * 100:.2f}% of a {trip:.2f} us round trip"
                    )
                if args.component_only:
                    return results
                pairs: dict[str, list[dict[str, float]]] = {c: [] for c in args.configs}
                hook_costs: list[dict[str, Any]] = []
                results["hook_cost"] = hook_costs
                for tab, config in harness.interleaved(args.configs, args.tabs):
                    got = await measure_tab(client, url, config, shims[config], args, rng, tab, hook_costs)
                    pairs[config].extend(got)
                    cost = hook_costs[-1]
                    line = f"  tab {tab + 1} {config:<16} hook {cost['hooked'] - cost['original']:.3f} us"
                    if got:
                        cpu = harness.summarize([p["cpu_ratio"] for p in got])
                        line += f", A/B hooked/original {(cpu.median - 1) * 100:+.2f}%"
                    print(line, file=sys.stderr)
            finally:
                await client.close()
    print(
        f"\n  Go {go.version}, the hook's own cost per call (hooked - original _resume on a stand-in, median over tabs)"
    )
    for config in args.configs:
        mine = [c for c in hook_costs if c["config"] == config]
        extra = harness.summarize([c["hooked"] - c["original"] for c in mine])
        share = harness.summarize([(c["hooked"] - c["original"]) / c["round_trip"] for c in mine])
        trip = harness.summarize([c["round_trip"] for c in mine]).median
        print(
            f"    {config:<16} {extra.median:.3f} us (IQR {extra.p25:.3f} .. {extra.p75:.3f})   "
            f"{share.median * 100:+.2f}% (IQR {share.p25 * 100:+.2f} .. {share.p75 * 100:+.2f}) "
            f"of a {trip:.2f} us round trip"
        )
    if args.pairs == 0:
        return results
    print(f"\n  Go {go.version}, round trip: the hook's overhead over the original _resume, per pair (median, IQR)")
    for config, got in pairs.items():
        cpu = harness.summarize([p["cpu_ratio"] for p in got])
        wall = harness.summarize([p["wall_ratio"] for p in got])
        base = harness.summarize([p["cpu_original_us"] for p in got])
        results["configs"][config] = {
            "cpu_ratio": cpu.as_dict(),
            "wall_ratio": wall.as_dict(),
            "original_cpu_us": base.as_dict(),
            "pairs": got,
        }
        print(
            f"    {config:<16} CPU {(cpu.median - 1) * 100:+6.2f}% (IQR {(cpu.p25 - 1) * 100:+.2f} .. "
            f"{(cpu.p75 - 1) * 100:+.2f})   wall {(wall.median - 1) * 100:+6.2f}% (IQR {(wall.p25 - 1) * 100:+.2f} .. "
            f"{(wall.p75 - 1) * 100:+.2f})   original {base.median:.3f} us, {len(got)} pairs"
        )
    # Noise only adds time (a Go GC cycle or a preemption inside a batch), so each tab's fastest
    # batch of each kind is its cost; the ratio of the two minima, per tab.
    print(f"\n  Go {go.version}, the same as the ratio of each tab's fastest batches (median over tabs, range)")
    for config, got in pairs.items():
        ratios = []
        for tab in sorted({p["tab"] for p in got}):
            mine = [p for p in got if p["tab"] == tab]
            ratios.append(min(p["cpu_us"] for p in mine) / min(p["cpu_original_us"] for p in mine))
        best = harness.summarize(ratios)
        results["configs"][config]["fastest_cpu_ratio"] = best.as_dict()
        print(
            f"    {config:<16} CPU {(best.median - 1) * 100:+6.2f}% "
            f"(tabs {', '.join(f'{(r - 1) * 100:+.2f}' for r in ratios)})"
        )
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tabs", type=int, default=5, help="tabs per configuration (default 5)")
    p.add_argument("--pairs", type=int, default=15, help="hooked/original batch pairs per tab (default 15)")
    p.add_argument("--n", type=int, default=20_000, help="round trips per batch (default 20000)")
    p.add_argument("--cooldown", type=float, default=1.0, help="seconds between tabs (default 1)")
    p.add_argument("--go", default="1.27.3", help="Go version (default 1.27.3)")
    p.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    p.add_argument("--component-n", type=int, default=1_000_000, help="timer calls per loop (default 1e6)")
    p.add_argument("--component-only", action="store_true", help="measure the timer alone, skip the A/B")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args()
    results = asyncio.run(run(args))
    harness.dump_json(args.json, results)
    json.dumps(results)  # fail here, not in a later reader, if something is not serialisable


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()

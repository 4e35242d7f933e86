"""Where the shim's time goes on the hot paths: the DevTools CPU profiler in the callbacks page.

Opens the callbacks bench app with the shim injected (as the exporter injects it), runs the
round-trip and FuncOf+Release loops under ``Profiler.start``/``stop`` (V8's sampling profiler,
what the DevTools Performance panel uses), and prints the functions with the most self time,
grouped by script (the shim, ``wasm_exec.js``, the Go module, the loop). The raw profile is saved
as ``.cpuprofile``, which Chromium DevTools and speedscope open.

Run: ``.venv/bin/python bench/profile_shim.py [--no-shim] [--out /tmp/shim.cpuprofile]``
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
from pathlib import Path
from typing import Any

import harness

LOOPS = """
(() => {
  for (let i = 0; i < %(n)d; i++) bench.add(i, 1);
  bench.funcOfRelease(%(m)d);
  return true;
})()
"""


def self_times(profile: dict[str, Any]) -> list[tuple[float, str, str]]:
    """(self ms, function, script) per function, most first: samples times the sampling interval."""
    nodes = {n["id"]: n for n in profile["nodes"]}
    deltas = profile.get("timeDeltas", [])
    counts: collections.Counter[int] = collections.Counter()
    weight: dict[int, float] = collections.defaultdict(float)
    for node_id, delta in zip(profile.get("samples", []), deltas, strict=False):
        counts[node_id] += 1
        weight[node_id] += delta / 1000  # microseconds -> ms
    by_function: dict[tuple[str, str], float] = collections.defaultdict(float)
    for node_id, ms in weight.items():
        frame = nodes[node_id]["callFrame"]
        name = frame.get("functionName") or "(anonymous)"
        script = frame.get("url", "").rsplit("/", 1)[-1] or "(page/eval)"
        by_function[(name, script)] += ms
    return sorted(((ms, name, script) for (name, script), ms in by_function.items()), reverse=True)


async def run(args: argparse.Namespace) -> None:
    go = harness.ensure_go(args.go)
    site = harness.BenchSite([go], ["callbacks"])
    # A sourceURL gives the shim's frames a script name in the profile.
    shim = None if args.no_shim else harness.compose_shim(args.shim_dir) + "\n//# sourceURL=shim.js\n"
    with site.serving():
        async with harness.chromium() as (endpoint, chrome):
            harness.print_header("shim profile", harness.machine_report(chrome=chrome, go=[go]), vars(args))
            client = await harness.CDPClient.connect(endpoint)
            page = await harness.open_app(client, site.url(go, "callbacks"), shim=shim)
            try:
                send = page.session.send
                await page.evaluate(LOOPS % {"n": args.n // 10, "m": args.m // 10})  # warm-up
                await send("Profiler.enable")
                await send("Profiler.setSamplingInterval", {"interval": args.interval_us})
                await send("Profiler.start")
                await page.evaluate(LOOPS % {"n": args.n, "m": args.m})
                profile = (await send("Profiler.stop"))["profile"]
            finally:
                await page.close()
                await client.close()
    Path(args.out).write_text(json.dumps(profile))
    rows = self_times(profile)
    total = sum(ms for ms, _, _ in rows)
    by_script: dict[str, float] = collections.defaultdict(float)
    for ms, _, script in rows:
        by_script[script] += ms
    print(f"\n  total sampled {total:.0f} ms; by script:")
    for script, ms in sorted(by_script.items(), key=lambda kv: -kv[1]):
        print(f"    {ms / total * 100:5.1f}%  {script}")
    print(f"\n  top {args.top} functions by self time:")
    for ms, name, script in rows[: args.top]:
        print(f"    {ms / total * 100:5.1f}%  {ms:8.1f} ms  {name}  [{script}]")
    print(f"\n  profile written to {args.out} (open it in Chromium DevTools or speedscope)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--go", default="1.27.3")
    p.add_argument("--n", type=int, default=200_000, help="round trips (default 200000)")
    p.add_argument("--m", type=int, default=100_000, help="FuncOf+Release cycles (default 100000)")
    p.add_argument("--interval-us", type=int, default=50, help="sampling interval (default 50 us)")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--no-shim", action="store_true", help="profile the page without the shim (the floor)")
    p.add_argument("--shim-dir", type=Path, help="compose the shim from this instrument/ directory (a patched copy)")
    p.add_argument("--out", default="/tmp/gowasm-shim.cpuprofile")
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()

"""Shim overhead: what the exporter costs the page it watches, on the two hot paths it hooks.

* **Round trip**: JS calls a Go callback (``bench.add(i, 1)``, a ``js.FuncOf``) N times; every call
  goes through the shim's ``Go._resume`` hook (counting, attribution entry, timing).
* **FuncOf+Release**: one callback loops ``js.FuncOf`` then ``Release`` M times; every cycle goes
  through the ``_makeFuncWrapper`` hook and both load-time probes (``FuncOf`` and ``Release`` call
  into the shim with Go's stack pointer).

Both are timed inside the page with ``performance.now()`` around the loop, and by the CPU time of
the renderer's main thread (``/proc/PID/schedstat``: blind to waiting for a core, so it holds on
a machine that is busy with something else). Each tab runs several batches and keeps its fastest
(noise only adds time). A fresh tab per measurement, one Chromium, the configurations interleaved
(every rep runs each once, in a shuffled order); the ratio of each configuration to ``none`` is
taken per rep, and its median and interquartile range are reported.

Configurations:

``none``            no exporter, no shim: the floor.
``none-bytes``      no shim either, but the page fetches the module's bytes and instantiates them
                    (``?load=bytes``) instead of ``instantiateStreaming``: no streaming compilation
                    and no wasm code cache, as under the shim (which must read the bytes).
``exporter``        the exporter attached (subprocess, default settings, ``--cdp``), so the page
                    gets the shim at its first script, its module is probed, and it is polled.
``shim``            the same shim injected by this script without an exporter (no polling).
``shim-no-timing``  the shim without the callback timer (``timing.js``: no clock read at all).
``shim-timing-all`` the shim timing every callback with ``performance.now()`` for the histogram
                    (``--call-timing-sample 1``; the default times one call in 16).
``shim-timing-64``  the shim timing one callback in 64 for the histogram (``--call-timing-sample 64``).
``shim-no-probes``  the shim without load-time probes (the module runs unmodified: no exact
                    ``Release`` accounting).
``shim-no-oncreate``, ``shim-no-onrelease``, ``shim-no-per-func``: the shim without its per-func
                    bookkeeping at js.FuncOf, at Release (the probe still calls out of wasm), or
                    both: where the FuncOf+Release overhead goes.
``shim-stacks``     the shim plus a JS stack captured at every ``js.FuncOf`` (a feature the shim
                    does not have: what attributing leaks by JS stack would cost).
``shim-stacks-64``  the same, sampled: one registration in 64.
``patched*``        the ``shim*`` variants composed from ``--shim-dir``, a patched copy of
                    ``instrument/``: a proposed change, before and after in the same run.

Run: ``.venv/bin/python bench/shim_overhead.py [--reps 5] [--go 1.27.3 --go 1.21.13] [--json out.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Any

import harness

CONFIGS = (
    "none",
    "none-bytes",
    "exporter",
    "shim",
    "shim-no-timing",
    "shim-timing-all",
    "shim-timing-64",
    "shim-no-probes",
    "shim-no-oncreate",
    "shim-no-onrelease",
    "shim-no-per-func",
    "shim-stacks",
    "shim-stacks-64",
)
# The same shim variants composed from --shim-dir (a patched copy of instrument/).
PATCHED = tuple(c.replace("shim", "patched", 1) for c in CONFIGS if c.startswith("shim"))

# Source edits that make the shim variants; each must match exactly once, or the shim changed and
# the variant would silently measure something else.
NO_TIMING = (("const TIMING_SAMPLE = clampInt(", "const TIMING_SAMPLE = 0 && clampInt("),)
TIMING_ALL = (("const TIMING_SAMPLE = clampInt(", "const TIMING_SAMPLE = 1 || clampInt("),)
TIMING_64 = (("const TIMING_SAMPLE = clampInt(", "const TIMING_SAMPLE = 64 || clampInt("),)
PREPARE = 'function prepareGoModule(input, mode = "copy") {'
NO_PROBES = ((PREPARE, PREPARE + "\n  return null;"),)


def stacks(every: int) -> tuple[tuple[str, str], ...]:
    return (
        ("function patchGoClass(GoClass) {", "let benchStacks = 0;\nlet benchLastStack = null;\n"
         "function patchGoClass(GoClass) {"),
        ("funcIdOf.set(wrapper, id);", f"funcIdOf.set(wrapper, id);\n        if (++benchStacks % {every} === 0) "
         "{ benchLastStack = new Error().stack; }"),
    )  # fmt: skip


# Where the FuncOf+Release overhead goes: the shim with parts of its per-func work cut out.
CREATED = "    this.funcsCreated++;\n"
ON_PROBE = "function onProbe(ctx, tag, sp) {\n"
NO_ON_CREATE = ((CREATED, CREATED + "    if (this.accounting !== null) return;\n"),)
NO_ON_RELEASE = ((ON_PROBE, ON_PROBE + "  if (tag !== 0) return;\n"),)

EDITS: dict[str, tuple[tuple[str, str], ...]] = {
    "shim": (),
    "shim-no-timing": NO_TIMING,
    "shim-timing-all": TIMING_ALL,
    "shim-timing-64": TIMING_64,
    "shim-no-probes": NO_PROBES,
    "shim-no-oncreate": NO_ON_CREATE,
    "shim-no-onrelease": NO_ON_RELEASE,
    "shim-no-per-func": NO_ON_CREATE + NO_ON_RELEASE,
    "shim-stacks": stacks(1),
    "shim-stacks-64": stacks(64),
}

WARM_UP = """
(() => {
  for (let i = 0; i < %(n)d; i++) bench.add(i, 1); // JIT, Go's stack, the shim's maps
  bench.funcOfRelease(%(m)d);
  return true;
})()
"""
ROUND_TRIPS = (
    "(() => { const t = performance.now(); for (let i = 0; i < %d; i++) bench.add(i, 1); "
    "return performance.now() - t; })()"
)
FUNCOF_RELEASE = "(() => { const t = performance.now(); bench.funcOfRelease(%d); return performance.now() - t; })()"


def shim_variant(config: str, shim_dir: Path | None) -> str:
    """The source of a ``shim*`` configuration; ``patched*`` ones are composed from ``shim_dir``."""
    patched = config.startswith("patched")
    source = harness.compose_shim(shim_dir if patched else None)
    for old, new in EDITS[config.replace("patched", "shim", 1) if patched else config]:
        if source.count(old) != 1:
            raise SystemExit(f"{config}: the shim no longer has {old!r} exactly once; update bench/shim_overhead.py")
        source = source.replace(old, new)
    return source


async def measure_page(
    client: harness.CDPClient, url: str, shim: str | None, args: argparse.Namespace, expect: str | None
) -> dict[str, float]:
    page = await harness.open_app(client, url, shim=shim)
    try:
        accounting = await harness.shim_accounting(page)
        if accounting != expect:
            raise SystemExit(f"{url}: expected the page's instrumentation to be {expect!r}, found {accounting!r}")
        await page.evaluate(WARM_UP % {"n": args.n // 10, "m": args.m // 10})
        pids = await harness.renderer_pids(client)
        wall: dict[str, list[float]] = {"round_trip": [], "funcof_release": []}
        cpu: dict[str, list[float]] = {"round_trip": [], "funcof_release": []}
        for _ in range(args.batches):
            for key, expression, count in (
                ("round_trip", ROUND_TRIPS % args.n, args.n),
                ("funcof_release", FUNCOF_RELEASE % args.m, args.m),
            ):
                before = {pid: harness.main_thread_cpu_ns(pid) for pid in pids}
                ms = await page.evaluate(expression)
                # The page's renderer is the one whose main thread ran the loop.
                ran = max(harness.main_thread_cpu_ns(pid) - before[pid] for pid in pids)
                wall[key].append(ms * 1000 / count)
                cpu[key].append(ran / 1000 / count)
    finally:
        await page.close()
        # A closed tab's renderer tears down in the background: let it finish before the next
        # tab measures, or its teardown competes with that measurement for the two cores.
        await asyncio.sleep(args.cooldown)
    return {
        # The fastest batch of the page: on a shared machine, noise (preemption, another process's
        # cache traffic) only ever adds time, so the minimum is the page's own cost.
        **{f"{key}_us": min(values) for key, values in wall.items()},
        **{f"{key}_cpu_us": min(values) for key, values in cpu.items()},
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    toolchains = [harness.ensure_go(v) for v in args.go]
    configs = args.configs
    shims = {c: shim_variant(c, args.shim_dir) for c in configs if c not in ("none", "none-bytes", "exporter")}
    site = harness.BenchSite(toolchains, ["callbacks"])
    results: dict[str, Any] = {"versions": {}}
    with site.serving():
        async with harness.chromium() as (endpoint, chrome):
            results["machine"] = harness.machine_report(chrome=chrome, go=toolchains)
            harness.print_header("shim overhead", results["machine"], vars(args))
            client = await harness.CDPClient.connect(endpoint)
            try:
                for go in toolchains:
                    url = site.url(go, "callbacks")
                    runs: dict[str, list[dict[str, float]]] = {c: [] for c in configs}
                    for rep, config in harness.interleaved(configs, args.reps):
                        if config == "exporter":
                            async with harness.run_exporter("--cdp", endpoint) as exporter:
                                await harness.wait_browsers_up(exporter)
                                sample = await measure_page(client, url, None, args, "exact")
                        elif config == "none-bytes":
                            sample = await measure_page(client, url + "?load=bytes", None, args, None)
                        else:
                            expect = None if config == "none" else "unsupported" if "no-probes" in config else "exact"
                            sample = await measure_page(client, url, shims.get(config), args, expect)
                        runs[config].append(sample)
                        print(
                            f"  go{go.version} rep {rep + 1} {config:<15} "
                            + "  ".join(f"{k} {v:.3f}" for k, v in sample.items()),
                            file=sys.stderr,
                        )
                    results["versions"][go.version] = report(go.version, runs)
            finally:
                await client.close()
    return results


METRICS = (
    ("round_trip_cpu_us", "round trip, main-thread CPU"),
    ("funcof_release_cpu_us", "FuncOf+Release, main-thread CPU"),
    ("round_trip_us", "round trip, wall (performance.now)"),
    ("funcof_release_us", "FuncOf+Release, wall (performance.now)"),
)


def report(version: str, runs: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    """Per configuration and metric: the median over reps, and the ratio to ``none`` of the same
    rep (paired, so that drift over the run cancels), as a median with its interquartile range."""
    out: dict[str, Any] = {c: {} for c in runs}
    base = runs.get("none", [])
    for key, title in METRICS:
        print(f"\n  Go {version}, {title}: us per op (median over pages), overhead vs none (median, IQR)")
        for config, samples in runs.items():
            values = [s[key] for s in samples]
            out[config][key] = harness.summarize(values).as_dict()
            line = f"    {config:<16}{harness.summarize(values).median:9.3f} us"
            if base and config != "none":
                r = harness.summarize([s[key] / b[key] for s, b in zip(samples, base, strict=False)])
                out[config][key.replace("_us", "_ratio")] = r.as_dict()
                line += f"   {(r.median - 1) * 100:+6.1f}%  (IQR {(r.p25 - 1) * 100:+.1f} .. {(r.p75 - 1) * 100:+.1f})"
            print(line)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=5, help="pages per configuration (default 5)")
    p.add_argument("--n", type=int, default=20_000, help="round trips per batch (default 20000)")
    p.add_argument("--m", type=int, default=10_000, help="FuncOf+Release cycles per batch (default 10000)")
    p.add_argument("--batches", type=int, default=7, help="batches per page; the page's value is the fastest")
    p.add_argument("--cooldown", type=float, default=1.0, help="seconds between tabs (default 1)")
    p.add_argument("--go", action="append", help="Go version (repeatable; default 1.27.3)")
    p.add_argument("--configs", nargs="+", choices=CONFIGS + PATCHED, default=list(CONFIGS))
    p.add_argument(
        "--shim-dir",
        type=Path,
        help="an instrument/ directory (a patched copy) to compose the patched* configurations from: "
        "before and after a proposed change in one interleaved run",
    )
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args()
    args.go = args.go or ["1.27.3"]
    if any(c.startswith("patched") for c in args.configs) and args.shim_dir is None:
        p.error("patched* configurations need --shim-dir")
    if "none" not in args.configs:
        args.configs.insert(0, "none")
    results = asyncio.run(run(args))
    harness.dump_json(args.json, results)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()

"""Module load: what load-time instrumentation adds to compiling a large Go module.

The bench app ``bigmodule`` links a broad slice of the standard library (well over 10 MB of
wasm). In a fresh tab per measurement, one Chromium, interleaved:

``none``  ``WebAssembly.instantiate(bytes, go.importObject)`` with no shim: compile + instantiate.
``shim``  the same call with the shim in the page (as the exporter injects it): the shim reads
          the module, rewrites it with its probes, then compiles and instantiates the result.

Both are timed in the page with ``performance.now()`` around the call (the bytes are fetched
before, untimed), and so is the time from ``go.run()`` to the program's first line of JS (lazy
compilation moves work there). Every measurement appends a unique custom section to the module,
so that V8 cannot hand back a module it compiled from the same bytes before.

``patched`` (with ``--shim-dir``): the shim composed from a patched copy of ``instrument/``, to
measure a proposed change against the current one in the same run.

Separately, side by side in each tab of ``none`` (no hooks installed): the shim's rewrite alone
(``prepareGoModule``: first as the shim runs it, in place in the page's buffer and then put back,
the first call in the page, as a page pays it; then into a new buffer, the fallback; and a copy
of the shim that first ran its warm-up, as a real page does while it fetches its module), compile +
instantiate, and one plain copy of the module into fresh memory (what a rewrite into new bytes
cannot go below).

Run: ``.venv/bin/python bench/module_load.py [--reps 7] [--go 1.27.3] [--json out.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import harness

CONFIGS = ("none", "shim")
PATCHED = "patched"  # the shim composed from --shim-dir: a proposed change, in the same run

# A custom section named "bench" with random bytes, appended to the module: unique bytes per
# measurement. Then the timed load, and the time until main() calls onBigmoduleReady.
LOAD = """
(async () => {
  const original = new Uint8Array(await (await fetch("main.wasm")).arrayBuffer());
  const unique = (bytes) => {
    const name = [5, 98, 101, 110, 99, 104]; // "bench"
    const payload = crypto.getRandomValues(new Uint8Array(16));
    const out = new Uint8Array(bytes.length + 2 + name.length + payload.length);
    out.set(bytes);
    out.set([0, name.length + payload.length, ...name, ...payload], bytes.length);
    return out;
  };
  const result = {};
  if (%(rewrite)s) {
    result.rewriteMs = {};
    for (const [name, internals] of %(internals)s) {
      // As the shim runs it (in place, then the bytes put back), then into a new buffer; a copy
      // of the shim that has warmed itself up (warmup.js, in an idle callback in a real page),
      // in place only.
      const modes = [["inPlace", name], ["copy", name + ", copy"]];
      if (internals.warmUp) {
        internals.warmUp();
        modes.pop();
      }
      for (const [mode, key] of modes) {
        const bytes = unique(original);
        const t = performance.now();
        const prepared = internals.prepareGoModule(bytes, mode);
        if (prepared.restore) prepared.restore();
        result.rewriteMs[key] = performance.now() - t;
        if (prepared.probes.accounting !== "exact") throw new Error(name + ": " + prepared.probes.accounting);
      }
    }
    let t;
    t = performance.now();
    await WebAssembly.instantiate(unique(original), new Go().importObject);
    result.bareInstantiateMs = performance.now() - t;
    t = performance.now();
    result.copied = original.slice().length; // fresh memory, as a rewritten module needs
    result.copyMs = performance.now() - t;
  }
  const bytes = unique(original);
  const shim = globalThis[Symbol.for("gowasm-exporter.shim")];
  result.warm = shim ? shim.snapshot().modules.warm === true : null; // warmup.js ran before the load
  const go = new Go();
  const ready = new Promise((resolve) => { window.onBigmoduleReady = resolve; });
  let t = performance.now();
  const { instance } = await WebAssembly.instantiate(bytes, go.importObject);
  result.instantiateMs = performance.now() - t;
  t = performance.now();
  go.run(instance);
  await ready;
  result.runToReadyMs = performance.now() - t;
  result.size = bytes.length;
  return result;
})()
"""


async def measure(
    client: harness.CDPClient, url: str, shim: str | None, internals: list[tuple[str, str]], rewrite: bool
) -> dict[str, Any]:
    page = await harness.open_app(client, url, "Promise.resolve(Go)", shim)
    try:
        pairs = ", ".join(f"[{json.dumps(name)}, {source}]" for name, source in internals)
        expression = LOAD % {"rewrite": "true" if rewrite else "false", "internals": f"[{pairs}]"}
        result = await page.evaluate(expression, await_promise=True)
        accounting = await harness.shim_accounting(page)
        expected = "exact" if shim is not None else None
        if accounting != expected:
            raise SystemExit(f"expected the module to be instrumented {expected!r}, found {accounting!r}")
        return result
    finally:
        await page.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    toolchains = [harness.ensure_go(v) for v in args.go]
    site = harness.BenchSite(toolchains, ["bigmodule"])
    shims = {"none": None, "shim": harness.compose_shim()}
    configs = CONFIGS
    if args.shim_dir is not None:
        shims[PATCHED] = harness.compose_shim(args.shim_dir)
        configs = (*CONFIGS, PATCHED)
    internals = [
        ("shim", harness.shim_internals()),
        ("shim, warmed up", harness.shim_internals(names=("prepareGoModule", "warmUp"))),
    ]
    if args.shim_dir is not None:
        internals.append((PATCHED, harness.shim_internals(args.shim_dir)))
    results: dict[str, Any] = {"versions": {}}
    with site.serving():
        async with harness.chromium() as (endpoint, chrome):
            results["machine"] = harness.machine_report(chrome=chrome, go=toolchains)
            harness.print_header("module load", results["machine"], vars(args))
            client = await harness.CDPClient.connect(endpoint)
            try:
                for go in toolchains:
                    url = site.url(go, "bigmodule")
                    size = site.wasm[(go.version, "bigmodule")].stat().st_size
                    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in configs}
                    for rep, config in harness.interleaved(configs, args.reps):
                        # Which rewrite runs first alternates: the second one finds warmer memory.
                        order = internals if rep % 2 == 0 else internals[::-1]
                        sample = await measure(client, url, shims[config], order, rewrite=config == "none")
                        runs[config].append(sample)
                        print(f"  go{go.version} rep {rep + 1} {config:<5} {sample}", file=sys.stderr)
                    results["versions"][go.version] = report(go.version, size, runs)
            finally:
                await client.close()
    return results


def report(version: str, size: int, runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {"module_bytes": size}
    print(f"\n  Go {version}, module {size / 1e6:.1f} MB: ms, median over tabs (IQR)")
    for key, title in (("instantiateMs", "instantiate(bytes)"), ("runToReadyMs", "go.run() to main ready")):
        base = [s[key] for s in runs["none"]]
        out[key] = {"none": harness.summarize(base).as_dict()}
        print(f"    {title:<24} none {harness.summarize(base).median:8.1f}")
        for config in (c for c in runs if c != "none"):
            probed = [s[key] for s in runs[config]]
            ratios = harness.summarize([p / b for p, b in zip(probed, base, strict=False)])
            out[key][config] = harness.summarize(probed).as_dict()
            out[key][f"{config}_ratio"] = ratios.as_dict()
            overhead = (ratios.median - 1) * 100
            print(
                f"    {'':<24} {config:<7} {harness.summarize(probed).median:8.1f}   overhead {overhead:+.1f}%"
                f" (IQR {(ratios.p25 - 1) * 100:+.1f} .. {(ratios.p75 - 1) * 100:+.1f})"
            )
    for config in (c for c in runs if c != "none"):
        warm = sum(1 for s in runs[config] if s.get("warm"))
        print(f"    {config}: warm-up done before the load in {warm} of {len(runs[config])} tabs")
    copy = [s["copyMs"] for s in runs["none"]]
    bare = [s["bareInstantiateMs"] for s in runs["none"]]
    out["compile_instantiate_ms"] = harness.summarize(bare).as_dict()
    out["copy_ms"] = harness.summarize(copy).as_dict()
    out["rewrite"] = {}
    print(f"    side by side in the same tab: compile+instantiate {harness.summarize(bare).median:.1f} ms;")
    for name in runs["none"][0]["rewriteMs"]:
        rewrite = [s["rewriteMs"][name] for s in runs["none"]]
        share = harness.summarize([r / b for r, b in zip(rewrite, bare, strict=False)])
        out["rewrite"][name] = {"ms": harness.summarize(rewrite).as_dict(), "share": share.as_dict()}
        print(
            f"      rewrite ({name}: prepareGoModule) {harness.summarize(rewrite).median:.1f} ms ="
            f" {share.median * 100:.1f}% of it (IQR {share.p25 * 100:.1f} .. {share.p75 * 100:.1f}%)"
        )
    floor = harness.summarize(copy).median
    print(
        f"      one copy of the module into fresh memory (the floor of a rewrite into new bytes)"
        f" {floor:.1f} ms ({floor / harness.summarize(bare).median * 100:.1f}%)"
    )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=7, help="tabs per configuration (default 7)")
    p.add_argument("--go", action="append", help="Go version (repeatable; default 1.27.3)")
    p.add_argument(
        "--shim-dir",
        type=Path,
        help="add a 'patched' configuration: the shim composed from this instrument/ directory (a patched copy)",
    )
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args()
    args.go = args.go or ["1.27.3"]
    results = asyncio.run(run(args))
    harness.dump_json(args.json, results)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()

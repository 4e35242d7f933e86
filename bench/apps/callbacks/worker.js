// A dedicated worker running one instance of the callbacks app, for the in-tab A/B benchmark
// (bench/worker_ab.py): several of these run side by side in one tab, some with the shim, and
// take turns at timed batches, so that the comparison shares the tab, the renderer and the hour.
//
// Messages: {op: "start", shim: source | null} evaluates the shim (as the daemon does in a
// worker: in its global scope, before any other script), then the toolchain's wasm_exec.js, and
// starts Go; {op: "batch", kind: "funcof" | "roundtrip", n} runs one timed loop.
"use strict";

async function start(shim) {
  if (shim) {
    (0, eval)(shim); // global scope, like Runtime.evaluate in a paused worker
  }
  importScripts("../wasm_exec.js");
  const ready = new Promise((resolve) => { self.onBenchReady = resolve; });
  const go = new Go();
  const bytes = await (await fetch("main.wasm")).arrayBuffer();
  const { instance } = await WebAssembly.instantiate(bytes, go.importObject);
  go.run(instance);
  await ready;
  const api = self[Symbol.for("gowasm-exporter.shim")];
  const instances = api ? api.snapshot().instances : null;
  return { accounting: instances === null ? null : instances.length ? instances[0].accounting : "no instance" };
}

function batch(kind, n) {
  const t = performance.now();
  if (kind === "funcof") {
    bench.funcOfRelease(n);
  } else {
    for (let i = 0; i < n; i++) {
      bench.add(i, 1);
    }
  }
  return { ms: performance.now() - t };
}

self.onmessage = async (event) => {
  const msg = event.data;
  try {
    postMessage({ ok: true, ...(msg.op === "start" ? await start(msg.shim) : batch(msg.kind, msg.n)) });
  } catch (error) {
    postMessage({ ok: false, error: String(error && error.stack || error) });
  }
};

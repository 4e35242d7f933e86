// Coverage of the shim beyond the ordinary page: //go:wasmexport calls (Go 1.24+), every
// compile path, and a TinyGo-shaped page (a fake: TinyGo cannot run here).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { buildApp, goRoots, goVersion, newPage, wasmExecPath } from "./helpers.mjs";

function versionAtLeast(root, minor) {
  const m = /^go1\.(\d+)/.exec(goVersion(root));
  return m !== null && Number(m[1]) >= minor;
}

async function runApp(page, bytes, readyName, load) {
  page.context.__bytes = bytes;
  const ready = new Promise((resolve) => {
    page.context[readyName] = resolve;
  });
  page.run(`
    globalThis.go = new Go();
    globalThis.loaded = (${load})(__bytes, go.importObject).then((instance) => {
      globalThis.wasmInstance = instance;
      go.run(instance);
    });
  `);
  await ready;
}

const LOADERS = {
  "instantiate(bytes)": "(b, imports) => WebAssembly.instantiate(b, imports).then((r) => r.instance)",
  "instantiate(ArrayBuffer)": "(b, imports) => WebAssembly.instantiate(new Uint8Array(b).buffer, imports).then((r) => r.instance)",
  "compile + instantiate(Module)": "(b, imports) => WebAssembly.compile(b).then((m) => WebAssembly.instantiate(m, imports))",
  "new Module + new Instance": "(b, imports) => Promise.resolve(new WebAssembly.Instance(new WebAssembly.Module(b), imports))",
};

for (const root of goRoots()) {
  describe(`coverage on ${goVersion(root)}`, () => {
    for (const [name, load] of Object.entries(LOADERS)) {
      test(`${name}: probed, exact, and the instance passes instanceof`, async () => {
        const page = newPage();
        page.injectShim();
        page.loadWasmExec(root);
        await runApp(page, buildApp(root, "releases"), "onReleasesReady", load);
        assert.equal(page.run("wasmInstance instanceof WebAssembly.Instance"), true);
        page.run("releases.leak(20)");
        const [snap] = page.snapshot().instances;
        assert.equal(snap.accounting, "exact");
        assert.equal(snap.created, page.run("releases.ledger().created"));
        assert.equal(snap.sites[0].site, "main.leakForever");
      });
    }

    test("wasm_exec.js bundled with the app's loader in one script", async () => {
      const page = newPage();
      page.injectShim();
      page.context.__bytes = buildApp(root, "releases");
      const ready = new Promise((resolve) => {
        page.context.onReleasesReady = resolve;
      });
      // One script, as a bundler emits it: the glue, then the app code that uses it.
      page.run(fs.readFileSync(wasmExecPath(root), "utf8") + `
        ;(() => {
          const go = new Go();
          globalThis.go = go;
          WebAssembly.instantiate(__bytes, go.importObject).then((r) => go.run(r.instance));
        })();`);
      await ready;
      page.run("releases.leak(3)");
      const [snap] = page.snapshot().instances;
      assert.equal(snap.mode, "early");
      assert.equal(snap.created, page.run("releases.ledger().created"));
      assert.equal(snap.accounting, "exact");
    });

    test("wasm_exec.js with mangled private names (as a property-mangling minifier leaves it)", async () => {
      // Simulated mangling: the members Go never names are renamed; _makeFuncWrapper and
      // _pendingEvent (called by name from Go) must stay, as any working minified build keeps them.
      let glue = fs.readFileSync(wasmExecPath(root), "utf8");
      for (const [from, to] of [["_resume", "_a"], ["_values", "_b"], ["_idPool", "_c"], ["_goRefCounts", "_d"],
        ["_ids", "_e"], ["_inst", "_f"], ["_scheduledTimeouts", "_g"], ["_nextCallbackTimeoutID", "_h"]]) {
        glue = glue.replaceAll(new RegExp(`\\b${from}\\b`, "g"), to);
      }
      assert.ok(!glue.includes("_resume") && glue.includes("_makeFuncWrapper"));
      const page = newPage();
      page.injectShim();
      page.run(glue);
      await runApp(page, buildApp(root, "releases"), "onReleasesReady", LOADERS["instantiate(bytes)"]);
      const before = page.snapshot().instances[0].calls;
      page.run("releases.patterns(); releases.leak(6)");
      const ledger = page.run("releases.ledger()");
      const [snap] = page.snapshot().instances;
      assert.equal(snap.created, ledger.created + ledger.printlns);
      assert.equal(snap.released, ledger.released + ledger.printlns);
      // 3 calls from JS, 2 Invoke() callbacks inside patterns(), 1 fs.write callback of fmt.Println.
      assert.equal(snap.calls - before, 6);
      assert.equal(snap.refs, page.run("go._b.length - 7 - go._c.length"));
      assert.deepEqual(Array.from(page.snapshot().missing).filter((m) => m.startsWith("Go.")), []);
    });

    test("//go:wasmexport calls are counted, timed and attributed", { skip: !versionAtLeast(root, 24) }, async () => {
      const page = newPage();
      page.injectShim();
      page.loadWasmExec(root);
      await runApp(page, buildApp(root, "exports"), "onExportsReady", LOADERS["instantiate(bytes)"]);
      const before = page.snapshot().instances[0].calls;
      assert.equal(page.run("wasmInstance.exports.add(2, 3)"), 5);
      assert.equal(page.run("wasmInstance.exports.add(40, 2)"), 42);
      const snap = page.snapshot().instances[0];
      assert.equal(snap.calls - before, 2);
      assert.equal(snap.durations.buckets.reduce((a, b) => a + b, 0), snap.calls);
      page.run("wasmInstance.exports.boom()");
      const exit = page.events.find((e) => e.type === "exit");
      assert.equal(exit.code, 2);
      assert.match(exit.stderr, /^panic: boom in a wasmexport/);
      assert.deepEqual([exit.cause.entry, exit.cause.funcName], ["export", "wasmexport boom"]);
    });
  });
}

// A hand-made module shaped like TinyGo's: it imports from gojs and WASI, exports `memory` and
// `_start`. The glue below is a fake written for this test (TinyGo's own glue is not available
// here): it has the members the shim looks at, and calls _start from run().
const str = (text) => [text.length, ...Array.from(text, (c) => c.charCodeAt(0))];
const section = (id, bytes) => [id, bytes.length, ...bytes]; // sizes stay below 128 here
const TINYGO_SHAPED = Uint8Array.from([
  0, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
  ...section(1, [1, 0x60, 0, 0]), // type 0: () -> ()
  ...section(2, [2, ...str("gojs"), ...str("runtime.ticks"), 0, 0, ...str("wasi_snapshot_preview1"), ...str("fd_write"), 0, 0]),
  ...section(3, [1, 0]), // one function of type 0
  ...section(5, [1, 0, 1]), // memory: 1 page
  ...section(7, [2, ...str("memory"), 2, 0, ...str("_start"), 0, 2]),
  ...section(10, [1, 2, 0, 0x0b]), // an empty body
]); // prettier-ignore

test("a TinyGo-shaped page runs with the shim and is reported as tinygo", async () => {
  assert.ok(WebAssembly.validate(TINYGO_SHAPED));
  const page = newPage();
  page.injectShim();
  page.run(`
    globalThis.Go = class {
      constructor() {
        this.importObject = { gojs: { "runtime.ticks": () => {} }, wasi_snapshot_preview1: { fd_write: () => {} } };
        this.importObject.env = this.importObject.gojs;
        this._values = [];
        this._idPool = [];
      }
      _resume() {}
      _makeFuncWrapper(id) { return () => id; }
      async run(instance) { this._inst = instance; instance.exports._start(); this.exited = true; return 0; }
    };
  `);
  page.context.__bytes = TINYGO_SHAPED;
  await page.run(`
    globalThis.go = new Go();
    WebAssembly.instantiate(__bytes, go.importObject).then((r) => go.run(r.instance));
  `);
  const [snap] = page.snapshot().instances;
  assert.equal(snap.flavour, "tinygo");
  assert.equal(snap.accounting, "unsupported");
  assert.equal(snap.memory, 65536);
  assert.equal(snap.exited, true);
});

// Unit tests of the shim's hooks, against real Go modules built by this test run and each
// toolchain's own wasm_exec.js, on every Go version found (see helpers.goRoots).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { buildApp, goRoots, goVersion, newPage, startLedger, instanceSnapshots } from "./helpers.mjs";

const roots = goRoots();

test("at least one Go toolchain is available", () => {
  assert.ok(roots.length > 0, "no Go toolchain: run scripts/bootstrap or set GOWASM_GO_ROOTS");
});

// Go finalizes dropped js.Values a GC cycle late, and each call into Go leaves two transient refs
// (the event and its arguments) until the next cycle: collect until two readings agree.
function settledRefs(page, ledger) {
  let last = null;
  for (let i = 0; i < 6; i++) {
    ledger.gc();
    const refs = only(page).refs;
    if (refs === last) {
      return refs;
    }
    last = refs;
  }
  throw new Error(`refs did not settle: ${last}`);
}

function only(page) {
  const list = instanceSnapshots(page);
  assert.equal(list.length, 1);
  return list[0];
}

for (const root of roots) {
  const version = goVersion(root);

  describe(`shim on ${version}`, () => {
    const bytes = () => buildApp(root, "ledger");

    test("counts js.FuncOf registrations exactly, at start-up and from callbacks", async () => {
      const page = newPage();
      page.injectShim();
      page.loadWasmExec(root);
      const ledger = await startLedger(page, bytes());
      const atStart = page.run("ledger.stats().funcsCreated");
      assert.equal(only(page).created, atStart);
      ledger.makeFuncs(37);
      ledger.makeFuncs(5);
      const stats = ledger.stats();
      assert.equal(stats.funcsCreated, atStart + 42);
      assert.equal(only(page).created, stats.funcsCreated);
      assert.equal(only(page).mode, "early");
    });

    test("counts every JS->Go callback invocation", async () => {
      const page = newPage();
      page.injectShim();
      page.loadWasmExec(root);
      const ledger = await startLedger(page, bytes());
      const before = only(page).calls;
      for (let i = 0; i < 25; i++) {
        ledger.noop();
      }
      const leaked = ledger.makeFuncs(3); // one call
      const funcs = ledger.leakedFuncs(); // one call
      assert.equal(leaked, 3);
      for (const f of funcs) {
        f(); // three calls
      }
      assert.equal(only(page).calls - before, 25 + 1 + 1 + 3);
    });

    test("times every Nth callback (timingSample), each timed call counting N times", async () => {
      const page = newPage();
      page.injectShim({ timingSample: 5 });
      page.loadWasmExec(root);
      const ledger = await startLedger(page, bytes());
      for (let i = 0; i < 23; i++) {
        ledger.noop();
      }
      const snap = only(page);
      const counted = snap.durations.buckets.reduce((a, b) => a + b, 0);
      assert.equal(counted, 5 * Math.floor(snap.calls / 5));
      assert.equal(snap.durations.long, 0);
    });

    test("long calls come from the timed calls, each counting N times", async () => {
      const page = newPage();
      page.injectShim({ timingSample: 3, longCallMs: 1e-9 }); // every timed call is a long one
      page.loadWasmExec(root);
      const ledger = await startLedger(page, bytes());
      for (let i = 0; i < 10; i++) {
        ledger.noop();
      }
      const snap = only(page);
      assert.equal(snap.durations.long, 3 * Math.floor(snap.calls / 3));
      assert.equal(snap.durations.buckets.reduce((a, b) => a + b, 0), snap.durations.long);
    });

    test("push mode sends the snapshot pushMs after a call into Go, once, and nothing when idle", async () => {
      const page = newPage();
      page.injectShim({ pushMs: 30 });
      page.loadWasmExec(root);
      const ledger = await startLedger(page, bytes());
      const pushes = () => page.events.filter((e) => e.type === "snapshot" && e.live === true);
      // The push arrives when the shim's timer fires: wait for the event itself, not for a time.
      const pushesReach = async (n) => {
        const deadline = Date.now() + 5000;
        while (pushes().length < n) {
          assert.ok(Date.now() < deadline, `no push #${n}`);
          await new Promise((resolve) => setImmediate(resolve));
        }
        return pushes();
      };
      await pushesReach(1); // start-up: run() was a call into Go
      ledger.makeFuncs(4);
      ledger.noop();
      const after = await pushesReach(2);
      const [rec] = after[1].snapshot.instances;
      const funcs = page.run("ledger.stats().funcsCreated"); // a call too: a third push follows
      assert.equal(rec.created, funcs); // the two calls above are in one push
      await pushesReach(3);
      // Idle: no call into Go, no push (an absence, so it can only be waited for).
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(pushes().length, 3);
    });

    test("timingSample 0 turns call timing off", async () => {
      const page = newPage();
      page.injectShim({ timingSample: 0 });
      page.loadWasmExec(root);
      const ledger = await startLedger(page, bytes());
      const before = only(page).calls;
      ledger.noop();
      const snap = only(page);
      assert.equal(snap.durations, null);
      assert.equal(snap.calls - before, 1); // still counted
    });

    test("warms the module rewrite up in an idle callback once Go is defined, counting nothing", async () => {
      const page = newPage();
      const idle = [];
      page.context.requestIdleCallback = (callback, options) => idle.push([callback, options]);
      page.injectShim();
      assert.equal(idle.length, 0); // no Go yet: nothing to warm up for
      page.loadWasmExec(root);
      assert.equal(idle.length, 1);
      assert.equal(page.snapshot().modules.warm, false);
      idle[0][0]();
      const warm = page.snapshot();
      assert.deepEqual(
        [warm.modules.warm, warm.modules.rewritten, warm.modules.inPlace, warm.errors],
        [true, 0, 0, 0],
      );
      const ledger = await startLedger(page, bytes()); // then the page's own module, as usual
      const snap = page.snapshot();
      assert.equal(snap.instances[0].accounting, "exact");
      assert.deepEqual([snap.modules.rewritten, snap.modules.inPlace], [1, 1]);
      assert.equal(ledger.stats().funcsCreated, snap.instances[0].created);
    });

    test("reports the js.Value ref table and linear memory exactly", async () => {
      const page = newPage();
      page.injectShim();
      page.loadWasmExec(root);
      const ledger = await startLedger(page, bytes());
      const base = settledRefs(page, ledger);
      ledger.hold(500);
      assert.equal(settledRefs(page, ledger) - base, 500);
      assert.equal(only(page).refs, page.run("go._values.length - 7 - go._idPool.length"));

      ledger.alloc(64);
      const mem = page.run("wasmInstance.exports.mem.buffer.byteLength");
      assert.ok(mem >= 64 << 20);
      assert.equal(only(page).memory, mem);
    });

    test("captures a callback panic's text, the exit code, and calls after exit", async () => {
      const page = newPage();
      page.injectShim();
      page.loadWasmExec(root);
      const ledger = await startLedger(page, bytes());
      const result = ledger.panic("boom in callback");
      assert.equal(result, undefined, "a Go panic does not throw into JS");
      const exits = page.events.filter((e) => e.type === "exit");
      assert.equal(exits.length, 1);
      const exit = exits[0];
      assert.equal(exit.code, 2);
      assert.match(exit.stderr, /^panic: boom in callback\n\ngoroutine \d+/);
      assert.match(exit.stderr, /main\.main\.func/);
      assert.match(exit.stderr, /syscall\/js\.handleEvent/);
      assert.equal(exit.stderrTruncated, false);
      assert.equal(exit.instance.exited, true);

      for (let i = 0; i < 4; i++) {
        assert.throws(() => ledger.noop(), /Go program has already exited/);
      }
      const snap = only(page);
      assert.equal(snap.afterExit, 4);
      assert.equal(snap.exited, true);
      assert.equal(snap.code, 2);
      assert.equal(snap.refs, null, "wasm_exec.js deletes the ref table at exit");
      assert.ok(snap.memory > 0, "memory stays readable after exit");
    });

    test("sees os.Exit codes and normal ends", async () => {
      const page = newPage();
      page.injectShim();
      page.loadWasmExec(root);
      const ledger = await startLedger(page, bytes());
      ledger.exit(3);
      const exits = page.events.filter((e) => e.type === "exit");
      assert.deepEqual(exits.map((e) => [e.code, e.stderr]), [[3, ""]]);
      assert.ok(page.logs.some((l) => l.level === "warn" && l.text === "exit code: 3"), "the app's exit handler still runs");
    });

    test("an instance it instantiated: the exit comes from runtime.wasmExit, go.exit stays a data property", async () => {
      // A data property turned accessor puts the Go object in V8's dictionary mode, which slows
      // every property access of wasm_exec.js (docs/performance.md, section 0).
      const page = newPage();
      page.injectShim();
      page.loadWasmExec(root);
      const ledger = await startLedger(page, bytes());
      const desc = page.run('Object.getOwnPropertyDescriptor(go, "exit")');
      assert.equal(typeof desc.value, "function");
      assert.equal(desc.get, undefined);
      page.run("globalThis.appExits = []; go.exit = (code) => appExits.push(code);"); // the app's own, after start
      ledger.exit(5);
      assert.deepEqual(page.events.filter((e) => e.type === "exit").map((e) => e.code), [5]);
      assert.deepEqual(Array.from(page.run("appExits")), [5], "the app's handler runs, once");
      assert.equal(only(page).code, 5);
    });

    test("announces instances with their module and mode", async () => {
      const page = newPage();
      page.injectShim();
      page.loadWasmExec(root);
      await startLedger(page, bytes());
      const starts = page.events.filter((e) => e.type === "instance_start");
      assert.equal(starts.length, 1);
      assert.equal(starts[0].iid, 1);
      assert.equal(starts[0].mode, "early");
      assert.equal(typeof starts[0].doc, "string");
    });

    test("is idempotent when injected twice", async () => {
      const page = newPage();
      page.injectShim();
      page.injectShim();
      page.loadWasmExec(root);
      const ledger = await startLedger(page, bytes());
      ledger.makeFuncs(7);
      assert.equal(only(page).created, ledger.stats().funcsCreated);
      assert.equal(page.events.filter((e) => e.type === "instance_start").length, 1);
    });

    test("instruments a running idle program late and counts from then on", async () => {
      const page = newPage();
      page.loadWasmExec(root);
      const ledger = await startLedger(page, bytes());
      ledger.makeFuncs(3); // before the shim: not observable
      page.injectShim();
      const adopted = page.run('globalThis[Symbol.for("gowasm-exporter.shim")].adopt([go])');
      assert.equal(adopted, 1);
      let snap = only(page);
      assert.equal(snap.mode, "late");
      assert.equal(snap.created, 0);
      const refsDirect = page.run("go._values.length - 7 - go._idPool.length");
      assert.equal(snap.refs, refsDirect);
      ledger.makeFuncs(11);
      snap = only(page);
      assert.equal(snap.created, 11);
      assert.equal(snap.calls, 1);
      ledger.panic("late boom");
      const exit = page.events.find((e) => e.type === "exit");
      assert.equal(exit.code, 2);
      assert.match(exit.stderr, /^panic: late boom\n/);
    });

    test("keeps two instances in one page apart", async () => {
      const page = newPage();
      page.injectShim();
      page.loadWasmExec(root);
      const first = await startLedger(page, bytes());
      page.run("globalThis.firstGo = go; globalThis.firstLedger = ledger;");
      const second = await startLedger(page, bytes());
      first.makeFuncs(4);
      second.makeFuncs(9);
      const list = instanceSnapshots(page);
      assert.equal(list.length, 2);
      assert.deepEqual(Array.from(list, (s) => s.created), [first.stats().funcsCreated, second.stats().funcsCreated]);
      second.panic("second dies");
      const exit = page.events.find((e) => e.type === "exit");
      assert.equal(exit.iid, 2);
      assert.match(exit.stderr, /^panic: second dies/);
      assert.equal(instanceSnapshots(page)[0].exited, false);
    });
  });
}

describe("never breaks the page", () => {
  const root = roots[roots.length - 1];

  test("a page without WebAssembly or Go loads the shim and reports what is missing", () => {
    const page = newPage();
    page.run("delete globalThis.WebAssembly;");
    page.injectShim();
    const snap = page.snapshot();
    assert.equal(snap.instances.length, 0);
    assert.ok(snap.missing.includes("WebAssembly"));
    assert.equal(snap.errors, 0);
  });

  test("a frozen fs keeps the app running, reported as a missing hook", { skip: !root }, async () => {
    const page = newPage();
    page.injectShim();
    page.loadWasmExec(root);
    page.run("Object.freeze(globalThis.fs);");
    const ledger = await startLedger(page, buildApp(root, "ledger"));
    ledger.makeFuncs(2);
    assert.equal(only(page).created, ledger.stats().funcsCreated);
    assert.ok(page.snapshot().missing.includes("fs.writeSync"));
  });

  test("a binding that throws loses the event, not the page", { skip: !root }, async () => {
    const page = newPage();
    page.run(`globalThis.${"__gowasmTestBinding"} = () => { throw new Error("hostile"); };`);
    page.injectShim();
    page.loadWasmExec(root);
    const ledger = await startLedger(page, buildApp(root, "ledger"));
    ledger.makeFuncs(1);
    const snap = page.snapshot();
    assert.equal(snap.instances[0].created, ledger.stats().funcsCreated);
    assert.equal(snap.eventsFailed, 1);
  });
});

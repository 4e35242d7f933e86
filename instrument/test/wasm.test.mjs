// Unit tests of the shim's wasm reader/editor and probes (wasm.js, probes.js, loading.js), on real
// Go modules built by this run and on small hand-made modules.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import vm from "node:vm";
import { buildApp, goRoots, goVersion, newPage, shimSource } from "./helpers.mjs";

// The shim's internal functions, evaluated without installing hooks: the module bodies up to
// (not including) main.js, with a tiny export at the end.
function internals() {
  const source = shimSource().replace(/\/\/ main\.js:[\s\S]*\n\}\)\(/, "return { parseModule, rewriteModule, " +
    "prepareGoModule, encodeU32, encodeS32, Reader, WasmFormatError, callProbe, countProbe, functionName, " +
    "findFunctions, functionTypes, planModule, writeInPlace, FuncSite, FUNC_SITE, syntheticGoModule, PROBES, skipBodies, " +
    "lowestDataAddress, SITE_ADDRESS, recordFor, funcIdOf };\n})(");
  const context = vm.createContext({ TextDecoder, TextEncoder, WebAssembly, performance, console });
  return vm.runInContext(source, context);
}

const w = internals();

// A minimal module: (import "env" "f" (func)) (func (export "g") (param i32) (result i32) local.get 0)
const TINY = Uint8Array.of(
  0, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
  1, 9, 2, 0x60, 0, 0, 0x60, 1, 0x7f, 1, 0x7f, // types
  2, 9, 1, 3, 0x65, 0x6e, 0x76, 1, 0x66, 0, 0, // import env.f
  3, 2, 1, 1, // function section
  7, 5, 1, 1, 0x67, 0, 1, // export "g" func 1
  10, 6, 1, 4, 0, 0x20, 0, 0x0b, // code
); // prettier-ignore

describe("LEB128", () => {
  test("unsigned values round-trip", () => {
    for (const v of [0, 1, 127, 128, 300, 16383, 16384, 2 ** 21, 2 ** 28 + 5, 2 ** 32 - 1]) {
      const bytes = Uint8Array.from(w.encodeU32(v));
      const r = new w.Reader(bytes);
      assert.equal(r.u32(), v);
      assert.equal(r.pos, bytes.length);
    }
  });

  test("signed encoding of small constants", () => {
    assert.deepEqual(Array.from(w.encodeS32(1)), [1]);
    assert.deepEqual(Array.from(w.encodeS32(64)), [0xc0, 0]);
    assert.deepEqual(Array.from(w.encodeS32(-1)), [0x7f]);
  });

  test("function bodies are skipped by their sizes of one, two and three bytes", () => {
    const body = (size) => [...w.encodeU32(size), ...new Array(size).fill(0)];
    const bytes = Uint8Array.from([...body(5), ...body(300), ...body(20000), ...body(1)]);
    assert.equal(w.skipBodies(bytes, 0, bytes.length, 3), bytes.length - 2);
    assert.equal(w.skipBodies(bytes, 0, bytes.length, 4), bytes.length);
    assert.throws(() => w.skipBodies(bytes, 0, bytes.length, 5), w.WasmFormatError);
    assert.throws(() => w.skipBodies(bytes.subarray(0, 7 + 300), 0, 7 + 300, 3), w.WasmFormatError);
  });

  test("overlong and truncated numbers are refused", () => {
    assert.throws(() => new w.Reader(Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 1)).u32(), w.WasmFormatError);
    assert.throws(() => new w.Reader(Uint8Array.of(0x80)).u32(), w.WasmFormatError);
  });
});

describe("module reader", () => {
  test("reads a hand-made module", () => {
    const m = w.parseModule(TINY);
    assert.deepEqual(Array.from(m.functionImports), ["env.f"]);
    assert.equal(JSON.stringify(Array.from(w.functionTypes(m, new Set([1])))), "[[1,1]]");
    assert.equal(m.names, null);
  });

  test("refuses what is not a module", () => {
    assert.throws(() => w.parseModule(Uint8Array.of(1, 2, 3)), w.WasmFormatError);
    assert.throws(() => w.parseModule(TINY.slice(0, TINY.length - 3)), w.WasmFormatError);
  });

  test("the warm-up's synthetic module has every probed function, of Go's type", () => {
    const m = w.parseModule(w.syntheticGoModule(300));
    const found = w.findFunctions(m, new Set(w.PROBES.map((p) => p.name)));
    assert.equal(found.size, w.PROBES.length);
    const types = w.functionTypes(m, new Set(found.values()));
    assert.deepEqual(Array.from(new Set(types.values())), [0]);
    assert.deepEqual(Array.from(m.types[0].params), [0x7f]);
  });

  test("the lowest address of active data segments, on hand-made data sections", () => {
    const withData = (payload) => w.parseModule(Uint8Array.from([...TINY, 11, payload.length, ...payload]));
    assert.equal(w.lowestDataAddress(w.parseModule(TINY)), Infinity);
    // active (memory 0) at 16 and 300, passive, active on memory 0 by index at 4100
    assert.equal(w.lowestDataAddress(withData([
      4, 0, 0x41, 16, 0x0b, 1, 0xaa, 0, 0x41, 0xac, 0x02, 0x0b, 0, 1, 2, 0xbb, 0xcc, 2, 0, 0x41, 0x84, 0x20, 0x0b, 0,
    ])), 16); // prettier-ignore
    assert.equal(w.lowestDataAddress(withData([1, 1, 1, 0xaa])), Infinity);
    assert.throws(() => w.lowestDataAddress(withData([1, 0, 0x23, 0, 0x0b, 0])), w.WasmFormatError); // global.get
    assert.throws(() => w.lowestDataAddress(withData([1, 0, 0x41, 0x7f, 0x0b, 0])), w.WasmFormatError); // -1
    assert.throws(() => w.lowestDataAddress(withData([1, 7, 0])), w.WasmFormatError);
  });

  test("a Go-shaped module with data in the zero page is not probed (the site probe's word is there)", () => {
    const clean = w.syntheticGoModule(10);
    assert.equal(w.prepareGoModule(clean).probes.accounting, "exact");
    const at = (address) => {
      const segments = [1, 0, 0x41, ...w.encodeS32(address), 0x0b, 1, 0xaa]; // one active segment, one byte
      return Uint8Array.from([...clean, 11, segments.length, ...segments]);
    };
    assert.equal(w.prepareGoModule(at(w.SITE_ADDRESS + 4)).probes.accounting, "exact");
    const refused = w.prepareGoModule(at(w.SITE_ADDRESS));
    assert.equal(refused.probes.accounting, "unsupported");
    assert.ok(Buffer.from(refused.bytes).equals(Buffer.from(at(w.SITE_ADDRESS))), "left as it was");
  });

  test("a module that is not Go is left alone", () => {
    assert.equal(w.prepareGoModule(TINY), null);
    assert.equal(w.prepareGoModule(Uint8Array.of(0, 0x61, 0x73, 0x6d, 9, 9, 9, 9)), null);
  });
});

describe("leak sites", () => {
  test("a func released before the next event is never marked; one that lives on is, with its id", () => {
    const rec = w.recordFor({}, "early");
    rec.accounting = "exact";
    rec.probes = { funcOfSite: () => 42, probes: { functionName: () => "main.site" } };
    const marks = (f) => Object.getOwnPropertySymbols(f).length;
    const f1 = () => {};
    rec.onCreate(f1, 1);
    rec.onRelease(f1);
    rec.onRelease(f1); // a second Release counts nothing
    assert.equal(marks(f1), 0, "nothing attached to a func released at once");
    const f2 = () => {};
    rec.onCreate(f2, 2);
    assert.equal(marks(f2), 0);
    assert.equal(w.funcIdOf.get(f2), 2, "its id is known while it waits");
    const f3 = () => {};
    rec.onCreate(f3, 3); // f2 outlived the next js.FuncOf: marked now
    assert.equal(marks(f2), 2);
    assert.equal(w.funcIdOf.get(f2), 2);
    const [site] = rec.topSites(5); // a snapshot marks f3 too
    assert.equal(marks(f3), 2);
    assert.equal(site.live, 2);
    rec.onRelease(f2);
    rec.onRelease(f3);
    rec.onRelease(f3);
    assert.equal(rec.funcsReleased, 3);
    assert.equal(rec.funcsCreated, 3);
    assert.equal(rec.topSites(5).length, 0);
  });

  test("a site whose first func lives forever keeps a bounded list, and still finds it oldest", () => {
    const site = new w.FuncSite(1);
    const first = () => {};
    site.created++;
    site.add(first, 1000);
    first[w.FUNC_SITE] = site;
    let longest = 0;
    for (let i = 0; i < 100000; i++) {
      const f = () => {};
      site.created++;
      site.add(f, 2000);
      f[w.FUNC_SITE] = site;
      f[w.FUNC_SITE] = null; // released, as onRelease does
      site.released++;
      longest = Math.max(longest, site.size);
    }
    assert.ok(longest <= 4096, `order grew to ${longest}`);
    assert.equal(site.oldestLive(), site.order[1]);
    assert.equal(site.order[0], first);
  });
});

for (const root of goRoots()) {
  describe(`Go modules of ${goVersion(root)}`, () => {
    test("a probed module validates, keeps its imports and exports, and adds the counters", () => {
      const bytes = buildApp(root, "releases");
      const prepared = w.prepareGoModule(bytes);
      assert.equal(prepared.probes.accounting, "exact");
      assert.ok(WebAssembly.validate(prepared.bytes));
      const before = new WebAssembly.Module(bytes);
      const after = new WebAssembly.Module(prepared.bytes);
      assert.deepEqual(WebAssembly.Module.imports(after), WebAssembly.Module.imports(before));
      const added = WebAssembly.Module.exports(after).filter((e) => !WebAssembly.Module.exports(before).some((b) => b.name === e.name));
      assert.deepEqual(added.map((e) => [e.name, e.kind]), [
        ["__gw0", "global"], // the four counters (the site probe writes Go's zero page instead)
        ["__gw1", "global"],
        ["__gw2", "global"],
        ["__gw3", "global"],
      ]);
      // Only the code, global and export sections grew, by a few bytes.
      assert.ok(prepared.bytes.length - bytes.length < 400);
    });

    test("the linker keeps the zero page free of data: the site probe's word is Go's to lend", () => {
      for (const ldflags of ["", "-s -w"]) {
        const lowest = w.lowestDataAddress(w.parseModule(buildApp(root, "releases", { ldflags })));
        assert.ok(lowest >= 12288 && lowest > w.SITE_ADDRESS, `data from ${lowest}`);
      }
    });

    test("in place: the same module without a copy, and the page's bytes put back exactly", () => {
      const original = buildApp(root, "releases");
      const bytes = Uint8Array.from(original); // the page's buffer
      const copied = w.prepareGoModule(original);
      const prepared = w.prepareGoModule(bytes, "inPlace");
      assert.ok(prepared.bytes.buffer === bytes.buffer, "written into the page's own buffer");
      assert.ok(prepared.bytes.length < bytes.length);
      const module = new WebAssembly.Module(prepared.bytes);
      const written = Uint8Array.from(prepared.bytes);
      prepared.restore();
      assert.ok(Buffer.from(bytes).equals(original), "every byte put back");
      // Section by section, the in-place module is the copied one without "go:buildid".
      const sections = (m) => m.sections.filter((s) => s.name !== "go:buildid")
        .map((s) => [s.id, s.name, Buffer.from(m.bytes.subarray(s.start, s.end)).toString("base64")]);
      assert.deepEqual(sections(w.parseModule(written)), sections(w.parseModule(copied.bytes)));
      assert.equal(WebAssembly.Module.customSections(module, "go:buildid").length, 0);
      assert.deepEqual(WebAssembly.Module.exports(module), WebAssembly.Module.exports(new WebAssembly.Module(copied.bytes)));
    });

    test("in place needs room: without a build ID the module is copied and the bytes untouched", () => {
      const original = buildApp(root, "releases", { ldflags: "-buildid=" });
      assert.equal(w.parseModule(original).sections.some((s) => s.name === "go:buildid"), false);
      const bytes = Uint8Array.from(original);
      const prepared = w.prepareGoModule(bytes, "inPlace");
      assert.ok(prepared.bytes.buffer !== bytes.buffer);
      assert.ok(Buffer.from(bytes).equals(original));
      assert.equal(prepared.probes.accounting, "exact");
      assert.ok(WebAssembly.validate(prepared.bytes));
    });

    test("in place is not tried on a buffer shared with other threads", () => {
      const original = buildApp(root, "releases");
      const shared = new Uint8Array(new SharedArrayBuffer(original.length));
      shared.set(original);
      const prepared = w.prepareGoModule(shared, "inPlace");
      assert.ok(prepared.bytes.buffer !== shared.buffer);
      assert.ok(Buffer.from(shared).equals(original));
      assert.ok(WebAssembly.validate(prepared.bytes));
    });

    test("names come from the name section, calling functions by index", () => {
      const m = w.parseModule(buildApp(root, "releases"));
      const found = w.findFunctions(m, new Set(["syscall_js.Func.Release", "main.leakForever"]));
      assert.equal(w.functionName(m, found.get("main.leakForever")), "main.leakForever");
      assert.equal(w.functionName(m, found.get("syscall_js.Func.Release")), "syscall_js.Func.Release");
    });

    test("a stripped build is reported as stripped and not rewritten", () => {
      const bytes = buildApp(root, "releases", { ldflags: "-s -w" });
      const prepared = w.prepareGoModule(bytes);
      assert.equal(prepared.probes.accounting, "stripped");
      assert.equal(prepared.bytes.length, bytes.length);
    });

    test("Release is counted exactly in every pattern, with leak sites and runtime probes", async () => {
      const page = newPage();
      page.injectShim();
      page.loadWasmExec(root);
      page.context.__bytes = buildApp(root, "releases");
      const ready = new Promise((resolve) => {
        page.context.onReleasesReady = resolve;
      });
      page.run("globalThis.go = new Go(); WebAssembly.instantiate(__bytes, go.importObject).then((r) => go.run(r.instance));");
      await ready;
      const rel = page.run("releases");
      const probesBefore = page.snapshot().instances[0].probes;
      rel.patterns();
      rel.leak(30);
      rel.exportReleased();
      page.run("releasedFunc(); releasedFunc(); releasedFunc();");
      rel.gc(2);
      rel.recoverPanics(4);
      const goroutinesBefore = page.snapshot().instances[0].probes.goroutines;
      rel.startGoroutines(6);
      const ledger = rel.ledger();
      const [snap] = page.snapshot().instances;
      assert.equal(snap.accounting, "exact");
      assert.equal(snap.created, ledger.created + ledger.printlns);
      assert.equal(snap.released, ledger.released + ledger.printlns);
      assert.equal(snap.afterRelease, 3);
      assert.equal(snap.probes.recoveredPanics - probesBefore.recoveredPanics, 4);
      assert.equal(snap.probes.gcCycles - probesBefore.gcCycles, ledger.numGC);
      assert.equal(snap.probes.goroutines - goroutinesBefore, 6);
      assert.equal(snap.sites[0].site, "main.leakForever");
      assert.equal(snap.sites[0].live, 30);
      assert.equal(snap.sites.reduce((sum, s) => sum + s.live, 0), snap.created - snap.released);
      rel.stopGoroutines();
      assert.equal(page.snapshot().instances[0].probes.goroutines, goroutinesBefore);
    });
  });
}

// warmup.js: the module rewrite's code paths run once on a synthetic module while the page idles.
//
// Probing a 24 MB Go module is 0.6-0.8 ms of work once V8 has compiled and tiered up the shim's
// loops, but 4.6-5.3 ms the first time (measured in Chromium 156 on a fresh tab: each function is
// compiled on its first call, and loops over thousands of names and function bodies start in the
// interpreter). A page waits for that first time when it compiles its Go module. So once
// wasm_exec.js has defined `Go` (a Go module is coming, usually after a fetch), the shim runs the
// same reader and planner over a small synthetic module of the same shape (thousands of names and
// bodies) in an idle callback, and the page's own module then takes the warm path. Only when the
// shim sees `Go` being defined (trapGoGlobal): in a page it joins late, the module is already in. The warm-up
// touches nothing of the page's and counts nothing; it runs at most once per document, and not
// where there is no requestIdleCallback (workers: their module arrives with their first script).

const WARM_UP_FUNCTIONS = 3000;
let warmedUp = false; // scheduled
let warmUpDone = false; // ran (reported in snapshots, `modules.warm`)

function scheduleWarmUp() {
  const idle = webGlobal("requestIdleCallback");
  if (warmedUp || typeof idle !== "function") {
    return;
  }
  warmedUp = true;
  guard(() => $apply(idle, globalThis, [() => guard(warmUp), { timeout: 1000 }]));
}

function warmUp() {
  const bytes = syntheticGoModule(WARM_UP_FUNCTIONS);
  const module = parseModule(bytes);
  const found = findFunctions(module, new Set(PROBES.map((p) => p.name)));
  const types = functionTypes(module, new Set(found.values()));
  const prologues = new Map();
  for (const index of found.values()) {
    if (isGoFunction(module, types.get(index))) {
      prologues.set(index, countProbe(module.importedGlobals + module.globalCount));
    }
  }
  const globals = [[TYPE.i64, PROBE_EXPORT_PREFIX + 0]];
  const written = writeInPlace(bytes, planModule(module, prologues, globals, true));
  if (written !== null) {
    written.restore();
  }
  warmUpDone = true;
}

// A module shaped like a Go one for the reader: a build ID, one import from gojs, `count`
// functions of Go's type (i32) -> i32 with tiny bodies and names, the probed names last. It is
// only read, never compiled.
function syntheticGoModule(count) {
  const out = [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0];
  const append = (list) => {
    for (let i = 0; i < list.length; i++) {
      out.push(list[i]);
    }
  };
  const section = (id, payload) => {
    out.push(id);
    append(encodeU32(payload.length));
    append(payload);
  };
  const total = count + PROBES.length;
  const functions = encodeU32(total);
  const code = encodeU32(total);
  const names = encodeU32(total);
  for (let i = 0; i < total; i++) {
    functions.push(0);
    code.push(4, 0, OP.localGet, 0, OP.end);
    names.push(...encodeU32(1 + i), ...encodeName(i < count ? "warm.f" + i : PROBES[i - count].name));
  }
  section(SECTION.custom, encodeName("go:buildid").concat(new Array(100).fill(0x41)));
  section(SECTION.type, [1, TYPE.func, 1, TYPE.i32, 1, TYPE.i32]);
  const probeImport = encodeName(PROBE_IMPORT.slice("gojs.".length));
  section(SECTION.import, [1].concat(encodeName("gojs"), probeImport, [EXTERNAL.function, 0]));
  section(SECTION.function, functions);
  section(SECTION.global, [1, TYPE.i32, 1, OP.i32Const, 0, OP.end]);
  section(SECTION.export, [0]);
  section(SECTION.code, code);
  section(SECTION.custom, encodeName("name").concat([1], encodeU32(names.length), names));
  return Uint8Array.from(out);
}

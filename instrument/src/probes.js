// probes.js: load-time probes in Go modules (shared/reference/go-wasm-runtime.md section 9).
//
// `Func.Release()` never crosses into JS, so the shim puts code at the entry of chosen Go
// functions before the module is compiled. This table is the one place that says which:
//   call probes   call JS with Go's stack pointer, for probes that need identity (which func is
//                 released);
//   site probe    stores the return address of js.FuncOf's caller in a word of Go's zero page
//                 (SITE_ADDRESS), read by the `_makeFuncWrapper` hook that FuncOf itself calls a
//                 moment later: the leak site, without a call out of wasm;
//   count probes  add one to a new exported i64 global, read by snapshot(): no call out of wasm.
// A Go function that has to grow its stack restarts from its entry (with PC_B 0 again: see
// morestack in cmd/internal/obj/wasm), so a probe there can fire twice for one call. Count probes
// therefore sit in functions that run on the system stack, which never grows (newproc1 and
// gcSweep under systemstack, goexit0 and recovery under mcall); the others are idempotent (a
// second Release of the same func changes nothing; FuncOf's caller is just stored again).
// Call probes reuse Go's own `runtime.resetMemoryDataView` import (adding an import would shift
// every function index): Go always passes its 8-aligned SP, the probes pass SP | tag.

const PROBES = [
  { name: "syscall_js.FuncOf", site: true, required: true }, // at entry, SP -> the caller's return PC
  { name: "syscall_js.Func.Release", call: 2, required: true }, // at entry, SP+8 -> the receiver's ref
  { name: "runtime.newproc1", count: "goroutinesCreated" },
  { name: "runtime.goexit0", count: "goroutinesExited" },
  { name: "runtime.gcSweep", count: "gcCycles" }, // once per cycle, from gcMarkTermination
  { name: "runtime.recovery", count: "recoveredPanics" },
];
const PROBE_IMPORT = "gojs.runtime.resetMemoryDataView";
const TAG_RELEASE = 2;
// Short: the export names are part of what must fit in the room writeInPlace frees.
const PROBE_EXPORT_PREFIX = "__gw";
const PC_F_OFFSET = 0x1000; // see ProbeContext.funcOfSite()
// The site probe's word: the last of the 4096 bytes below Go's data that its linker keeps as a
// zero page (cmd/link/internal/ld/data.go, wasmMinDataAddr), checked against the module's data
// segments before it is used (lowestDataAddress).
const SITE_ADDRESS = 4092;

// What a prepared module carries: how it was instrumented and how to read its probes.
class ModuleProbes {
  constructor(accounting, module, counters, flavour = "go") {
    this.accounting = accounting; // "exact" | "stripped" | "unsupported"
    this.flavour = flavour; // "go" | "tinygo" (TinyGo imports WASI next to gojs)
    this.counters = counters; // [[counter name, export name], ...]
    this.imports = module ? module.functionImports.length : 0;
    this.names = null; // FunctionNames, read from the compiled module when first needed
    this.compiled = null; // the WebAssembly.Module (set by loading.js), whose name section that is
    this.hasNames = Boolean(module && module.names);
    this.nameCache = new Map();
  }

  // The names are read from the compiled module, not kept from the bytes at load time: the page
  // may reuse its buffer, and a copy of a big module's names costs a load about a millisecond.
  namesTable() {
    if (this.names === null && this.hasNames && this.compiled !== null) {
      this.hasNames = false; // one attempt
      this.names = guard(() => {
        const [section] = $customSections(this.compiled, "name");
        const bytes = new Uint8Array(section);
        return readFunctionNames(new Reader(bytes, 0, bytes.length), bytes);
      }) || null;
    }
    return this.names;
  }

  functionName(index) {
    let name = this.nameCache.get(index);
    if (name === undefined) {
      const names = this.namesTable();
      name = (names && functionName({ names }, index)) || `wasm-function[${index}]`;
      if (this.nameCache.size < 10000) {
        this.nameCache.set(index, name);
      }
    }
    return name;
  }
}

let modulesRewritten = 0;
let modulesRewrittenInPlace = 0; // of modulesRewritten: without a copy (writeInPlace)
let modulesRefused = 0;

// Go module bytes in, instrumented bytes out: { bytes, probes, restore }, or null when the bytes
// are not a Go module (they are then used as they are). Refusals keep the original bytes.
// `mode`:
//   "copy"     the instrumented module is a new buffer; the input is not touched;
//   "inPlace"  the module is written into the input's own buffer (writeInPlace), and restore()
//              must be called right after the synchronous compile call, before any page code
//              runs (every WebAssembly compile entry point copies its bytes before returning).
// In place falls back to a copy when the plan does not fit or the buffer is shared with other
// threads (they could read it while it is rewritten).
function prepareGoModule(input, mode = "copy") {
  const bytes = input instanceof Uint8Array ? input : new Uint8Array(ArrayBuffer.isView(input) ? input.buffer : input,
    ArrayBuffer.isView(input) ? input.byteOffset : 0, ArrayBuffer.isView(input) ? input.byteLength : undefined);
  let module;
  try {
    module = parseModule(bytes);
  } catch (_) {
    return null; // not a module we can read: not ours to touch
  }
  if (!module.importModules.has("gojs")) {
    return null;
  }
  if (module.importModules.has("wasi_snapshot_preview1")) {
    return unchanged(bytes, new ModuleProbes("unsupported", null, [], "tinygo"));
  }
  if (module.names === null) {
    return unchanged(bytes, new ModuleProbes("stripped", module, []));
  }
  try {
    const probeImport = module.functionImports.indexOf(PROBE_IMPORT);
    const found = findFunctions(module, new Set(PROBES.map((p) => p.name)));
    const types = functionTypes(module, new Set(found.values()));
    const prologues = new Map();
    const counters = [];
    const globals = []; // [[type, export name], ...]: the new globals, in index order
    const newGlobal = (type) => {
      const exportName = PROBE_EXPORT_PREFIX + globals.length;
      globals.push([type, exportName]);
      return [module.importedGlobals + module.globalCount + globals.length - 1, exportName];
    };
    for (const probe of PROBES) {
      const index = found.get(probe.name);
      if (index === undefined || !isGoFunction(module, types.get(index)) || (probe.call && probeImport < 0)) {
        if (probe.required) {
          throw new WasmFormatError("cannot probe " + probe.name);
        }
        continue;
      }
      if (probe.call) {
        prologues.set(index, callProbe(probe.call, probeImport));
      } else if (probe.site) {
        if (lowestDataAddress(module) < SITE_ADDRESS + 4) {
          throw new WasmFormatError("data in the zero page"); // not Go's layout: leave the module alone
        }
        prologues.set(index, siteProbe(SITE_ADDRESS));
      } else {
        const [globalIndex, exportName] = newGlobal(TYPE.i64);
        counters.push([probe.count, exportName]);
        prologues.set(index, countProbe(globalIndex));
      }
    }
    const probes = new ModuleProbes("exact", module, counters);
    modulesRewritten++;
    if (mode !== "copy" && !isShared(bytes)) {
      const written = writeInPlace(bytes, planModule(module, prologues, globals, true));
      if (written !== null) {
        modulesRewrittenInPlace++;
        return { bytes: written.bytes, probes, restore: written.restore };
      }
    }
    return { bytes: rewriteModule(module, prologues, globals), probes, restore: noRestore };
  } catch (_) {
    modulesRefused++;
    return unchanged(bytes, new ModuleProbes("unsupported", module, []));
  }
}

function noRestore() {}

function unchanged(bytes, probes) {
  return { bytes, probes, restore: noRestore };
}

function isShared(bytes) {
  return guard(() => $toString.call(bytes.buffer)) !== "[object ArrayBuffer]";
}

// One instantiation of a prepared module: it links the probes' calls to the Go instance.
class ProbeContext {
  constructor(probes) {
    this.probes = probes;
    this.instance = null;
    this.go = null;
    this.view = null;
    this.rec = null; // the Go instance's record, once known (the Release probe fires on every Release)
    this.values = null; // its ref table (wasm_exec.js sets `_values` once, in run())
    this.exitImport = false; // runtime.wasmExit reports the exit (withShimImports)
    this.exitRec = null; // the record the exit goes to, once the instance started
  }

  // The function index of the latest js.FuncOf caller (-1: unknown), from the site probe, which
  // every exactly accounted module has (it is required). PC_F = 0x1000 + function index not
  // counting imports (cmd/link/internal/wasm); a PC is PC_F<<16 | PC_B.
  funcOfSite() {
    if (this.probes.accounting !== "exact" || this.instance === null) {
      return -1;
    }
    const pc = this.dataView().getUint32(SITE_ADDRESS, true);
    return pc === 0 ? -1 : (pc >>> 16) - PC_F_OFFSET + this.probes.imports;
  }

  dataView() {
    if (this.view === null) {
      this.view = new DataView(this.instance.exports.mem.buffer); // dropped on every growth
    }
    return this.view;
  }

  readCounter(name) {
    for (const [counter, exportName] of this.probes.counters) {
      if (counter === name) {
        const global = guard(() => this.instance.exports[exportName]);
        return global ? Number(global.value) : null;
      }
    }
    return null;
  }
}

const contextOf = new $WeakMap(); // WebAssembly.Instance -> ProbeContext
const probesOf = new $WeakMap(); // WebAssembly.Module -> ModuleProbes

// A copy of the import object for one instance the shim instantiates:
//   `runtime.wasmExit` (Go's only exit path, given SP; the code is the int32 at SP+8) reports the
//   exit itself, so `go.exit` can stay a plain data property (see hookExit in go_hooks.js);
//   `runtime.resetMemoryDataView` also serves the call probes, for probed modules.
function withShimImports(imports, ctx) {
  const gojs = Object.assign({}, imports.gojs);
  const originalExit = gojs["runtime.wasmExit"];
  if (typeof originalExit === "function") {
    ctx.exitImport = true;
    gojs["runtime.wasmExit"] = function wasmExit(sp) {
      guard(() => {
        const rec = ctx.exitRec;
        if (rec !== null) {
          onExit(rec, new DataView(rec.memory.buffer).getInt32((sp >>> 0) + 8, true));
        }
      });
      return $apply(originalExit, this, arguments);
    };
  }
  if (ctx.probes.accounting === "exact") {
    const original = gojs["runtime.resetMemoryDataView"];
    gojs["runtime.resetMemoryDataView"] = function resetMemoryDataView(arg) {
      const tag = arg & 7;
      if (tag === 0) {
        ctx.view = null; // Go grew its memory: the old buffer is detached
        return $apply(original, this, [arg]);
      }
      try {
        onProbe(ctx, tag, arg & ~7); // no guard(): a closure per probe call is measurable
      } catch (_) {
        shimErrors++;
      }
      return undefined;
    };
  }
  return Object.assign({}, imports, { gojs });
}

function onProbe(ctx, tag, sp) {
  let rec = ctx.rec;
  if (rec === null) {
    rec = ctx.go === null ? undefined : recordByGo.get(ctx.go);
    if (rec === undefined || ctx.instance === null) {
      return;
    }
    ctx.rec = rec;
  }
  if (tag === TAG_RELEASE) {
    const ref = ctx.dataView().getUint32(sp + 8, true); // low word of the NaN-boxed js.Value ref: its id
    if (ctx.values === null) {
      ctx.values = refTable(ctx.go).values; // found by shape when the names are mangled
      if (ctx.values === null) {
        return;
      }
    }
    const wrapper = ctx.values[ref];
    if (typeof wrapper === "function") {
      rec.onRelease(wrapper);
    }
  }
}

// probes.js: load-time probes in Go modules (shared/reference/go-wasm-runtime.md section 9).
//
// `Func.Release()` never crosses into JS, so the shim puts code at the entry of chosen Go
// functions before the module is compiled. This table is the one place that says which:
//   call probes   call JS with Go's stack pointer, for probes that need identity (which func is
//                 released, which Go function called js.FuncOf);
//   count probes  add one to a new exported i64 global, read by snapshot(): no call out of wasm.
// A Go function that has to grow its stack restarts from its entry (with PC_B 0 again: see
// morestack in cmd/internal/obj/wasm), so a probe there can fire twice for one call. Count probes
// therefore sit in functions that run on the system stack, which never grows (newproc1 and
// gcSweep under systemstack, goexit0 and recovery under mcall); call probes are idempotent (a
// second Release of the same func changes nothing; FuncOf's caller is just noted again).
// Call probes reuse Go's own `runtime.resetMemoryDataView` import (adding an import would shift
// every function index): Go always passes its 8-aligned SP, the probes pass SP | tag.

const PROBES = [
  { name: "syscall_js.FuncOf", call: 1, required: true }, // at entry, SP -> the caller's return PC
  { name: "syscall_js.Func.Release", call: 2, required: true }, // at entry, SP+8 -> the receiver's ref
  { name: "runtime.newproc1", count: "goroutinesCreated" },
  { name: "runtime.goexit0", count: "goroutinesExited" },
  { name: "runtime.gcSweep", count: "gcCycles" }, // once per cycle, from gcMarkTermination
  { name: "runtime.recovery", count: "recoveredPanics" },
];
const PROBE_IMPORT = "gojs.runtime.resetMemoryDataView";
const TAG_FUNCOF = 1;
const TAG_RELEASE = 2;
const PROBE_EXPORT_PREFIX = "__gowasm_probe_";
// cmd/link/internal/wasm: PC_F = 0x1000 + function index not counting imports; a PC is PC_F<<16 | PC_B.
const PC_F_OFFSET = 0x1000;

// What a prepared module carries: how it was instrumented and how to read its probes.
class ModuleProbes {
  constructor(accounting, module, counters, flavour = "go") {
    this.accounting = accounting; // "exact" | "stripped" | "unsupported"
    this.flavour = flavour; // "go" | "tinygo" (TinyGo imports WASI next to gojs)
    this.counters = counters; // [[counter name, export name], ...]
    this.imports = module ? module.functionImports.length : 0;
    this.names = null; // the name section's function names, kept apart from the module bytes
    if (module && module.names) {
      this.names = { names: module.names.detached() }; // what functionName() reads
    }
    this.nameCache = new Map();
  }

  functionName(index) {
    let name = this.nameCache.get(index);
    if (name === undefined) {
      name = (this.names && functionName(this.names, index)) || `wasm-function[${index}]`;
      if (this.nameCache.size < 10000) {
        this.nameCache.set(index, name);
      }
    }
    return name;
  }
}

let modulesRewritten = 0;
let modulesRefused = 0;

// Go module bytes in, instrumented bytes out: { bytes, probes }, or null when the bytes are not
// a Go module (they are then used as they are). Refusals keep the original bytes.
function prepareGoModule(input) {
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
    return { bytes, probes: new ModuleProbes("unsupported", null, [], "tinygo") };
  }
  if (module.names === null) {
    return { bytes, probes: new ModuleProbes("stripped", module, []) };
  }
  try {
    const probeImport = module.functionImports.indexOf(PROBE_IMPORT);
    const found = findFunctions(module, new Set(PROBES.map((p) => p.name)));
    const prologues = new Map();
    const counters = [];
    for (const probe of PROBES) {
      const index = found.get(probe.name);
      if (index === undefined || !isGoFunction(module, index) || (probe.call && probeImport < 0)) {
        if (probe.required) {
          throw new WasmFormatError("cannot probe " + probe.name);
        }
        continue;
      }
      if (probe.call) {
        prologues.set(index, callProbe(probe.call, probeImport));
      } else {
        const globalIndex = module.importedGlobals + module.globalCount + counters.length;
        counters.push([probe.count, PROBE_EXPORT_PREFIX + probe.count]);
        prologues.set(index, countProbe(globalIndex));
      }
    }
    const rewritten = rewriteModule(module, prologues, counters.map((c) => c[1]));
    modulesRewritten++;
    return { bytes: rewritten, probes: new ModuleProbes("exact", module, counters) };
  } catch (_) {
    modulesRefused++;
    return { bytes, probes: new ModuleProbes("unsupported", module, []) };
  }
}

// One instantiation of a prepared module: it links the probes' calls to the Go instance.
class ProbeContext {
  constructor(probes) {
    this.probes = probes;
    this.instance = null;
    this.go = null;
    this.view = null;
    this.rec = null; // the Go instance's record, once known (probes fire on every FuncOf/Release)
    this.values = null; // its ref table (wasm_exec.js sets `_values` once, in run())
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

// A copy of the import object whose probe import also serves the call probes.
function withProbeImports(imports, ctx) {
  if (ctx.probes.accounting !== "exact") {
    return imports;
  }
  const original = imports.gojs["runtime.resetMemoryDataView"];
  const gojs = Object.assign({}, imports.gojs);
  gojs["runtime.resetMemoryDataView"] = function resetMemoryDataView(arg) {
    const tag = arg & 7;
    if (tag === 0) {
      ctx.view = null; // Go grew its memory: the old buffer is detached
      return $apply(original, this, arguments);
    }
    try {
      onProbe(ctx, tag, arg & ~7); // no guard(): a closure per probe call is measurable
    } catch (_) {
      shimErrors++;
    }
    return undefined;
  };
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
  const view = ctx.dataView();
  if (tag === TAG_FUNCOF) {
    const pc = view.getUint32(sp, true); // the return address: a PC in the calling function
    rec.pendingSite = (pc >>> 16) - PC_F_OFFSET + ctx.probes.imports;
  } else if (tag === TAG_RELEASE) {
    const ref = view.getUint32(sp + 8, true); // low word of the NaN-boxed js.Value ref: its id
    if (ctx.values === null) {
      ctx.values = refTable(ctx.go).values; // found by shape when the names are mangled
      if (ctx.values === null) {
        return;
      }
    }
    const id = funcIdOf.get(ctx.values[ref]);
    if (id !== undefined) {
      rec.onRelease(id);
    }
  }
}

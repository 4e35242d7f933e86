// instances.js: one record per Go instance (one `new Go()` that ran), with its counters.
//
// Counters here are cumulative for the life of the instance; the daemon turns them into deltas
// and accumulates them per (page, module) across reloads. Gauges are read from the live `Go`
// object at snapshot time, never cached.

// wasm_exec.js `run()` seeds `_values` with 7 predefined slots (NaN, 0, null, true, false,
// globalThis, the Go object); ids from 7 up are the js.Values Go has been handed.
const PREDEFINED_REFS = 7;

// On each js.FuncOf wrapper of an exactly accounted instance: its FuncSite while the func is
// live, null once it was released (next to attribution.js' FUNC_ID on the same wrappers).
const FUNC_SITE = Symbol("gowasm-exporter.funcSite");

class GoInstanceRecord {
  constructor(go, iid, mode) {
    this.go = go;
    this.iid = iid;
    this.mode = mode; // "early": seen from run(); "late": found after it started
    this.module = null; // URL of the wasm module, when known
    this.memory = null; // the instance's exported WebAssembly.Memory (`exports.mem`)
    this.startedAt = $now();
    this.funcsCreated = 0;
    this.calls = 0;
    this.callsAfterExit = 0;
    this.exited = false;
    this.exitCode = null;
    this.exitObserved = false; // false when the exit was inferred from `go.exited`
    this.announced = false; // instance_start sent
    this.stderr = new StderrCapture();
    this.timing = new CallTiming();
    this.lateCallsReported = 0; // "after_exit" events sent, bounded
    // Release accounting (probes.js): exact only for instances of modules the shim probed.
    this.accounting = mode === "early" ? "unsupported" : "late_attach";
    this.flavour = "go"; // or "tinygo"
    this.probes = null; // ProbeContext
    this.funcsReleased = 0;
    this.callsAfterRelease = 0;
    this.sites = new Map(); // function index of a js.FuncOf caller -> FuncSite
    this.lastSite = null; // the FuncSite of the previous js.FuncOf (callers repeat: one Map lookup less)
    this.pending = null; // the wrapper of the latest js.FuncOf, not marked yet (see onCreate)
    this.pendingId = 0;
    this.pendingSite = null;
    this.pendingBorn = 0;
  }

  linkProbes(ctx) {
    this.probes = ctx;
    this.accounting = ctx.probes.accounting;
  }

  // A js.FuncOf: `wrapper` is the JS function _makeFuncWrapper made for func `id`. Which site it
  // came from is kept on the wrapper itself (FUNC_SITE, until its Release), not in a Map by id: a
  // property on functions that all share one hidden class costs a few ns, a Map entry more.
  // But not at once: most funcs of a busy page are released before the next js.FuncOf (a
  // callback made for one call), and the property storage of every marked wrapper is copied by
  // each scavenge while Go holds it, which was most of what was left of the shim's cost on the
  // FuncOf+Release cycle (bench/worker_ab.py, docs/performance.md section 0). So the latest func
  // waits as `pending`, and only one that is still live when the next js.FuncOf, a snapshot or
  // the exit comes is marked (settle), with its site, its id (attribution.js) and its creation
  // time as of its js.FuncOf.
  onCreate(wrapper, id) {
    this.funcsCreated++;
    if (this.accounting !== "exact") {
      funcIdOf.set(wrapper, id);
      return;
    }
    if (this.pending !== null) {
      this.settle();
    }
    const siteIndex = this.probes.funcOfSite();
    let site = this.lastSite;
    if (site === null || site.index !== siteIndex) {
      site = this.sites.get(siteIndex);
      if (site === undefined) {
        site = new FuncSite(siteIndex);
        this.sites.set(siteIndex, site);
      }
      this.lastSite = site;
    }
    site.created++;
    this.pending = wrapper;
    this.pendingId = id;
    this.pendingSite = site;
    this.pendingBorn = coarseNow;
  }

  settle() {
    const wrapper = this.pending;
    this.pending = null;
    funcIdOf.set(wrapper, this.pendingId);
    this.pendingSite.add(wrapper, this.pendingBorn);
    wrapper[FUNC_SITE] = this.pendingSite;
  }

  // A js.Func's Release ran (probe at its entry). Releasing a func twice changes nothing.
  onRelease(wrapper) {
    let site;
    if (wrapper === this.pending) {
      site = this.pendingSite; // released before anything else happened: never marked
      this.pending = null;
    } else {
      site = wrapper[FUNC_SITE];
      if (site === undefined || site === null) {
        return;
      }
      wrapper[FUNC_SITE] = null;
    }
    this.funcsReleased++;
    site.released++;
    if (site.released === site.created) {
      site.clear(); // nothing live: no oldest to find, and the list starts over
    }
  }

  topSites(limit) {
    if (this.pending !== null) {
      this.settle();
    }
    const sites = Array.from(this.sites.values()).filter((s) => s.created > s.released);
    sites.sort((a, b) => b.created - b.released - (a.created - a.released));
    const now = $now();
    return sites.slice(0, limit).map((s) => {
      const oldest = s.oldestLive();
      return {
        site: s.index < 0 ? "unknown" : this.probes.probes.functionName(s.index),
        live: s.created - s.released,
        created: s.created,
        released: s.released,
        oldestAgeMs: oldest === null ? null : now - oldest,
      };
    });
  }

  // Linear memory size in bytes. `exports.mem` is kept from run(), because wasm_exec.js deletes
  // `_inst` at exit; `go.mem` (a DataView, rebuilt on every growth by resetMemoryDataView) is
  // the fallback for instances found late.
  memoryBytes() {
    const fromExport = guard(() => this.memory && this.memory.buffer.byteLength); // TinyGo: exports.memory
    if (typeof fromExport === "number") {
      return fromExport;
    }
    const fromView = guard(() => this.go.mem.buffer.byteLength);
    return typeof fromView === "number" ? fromView : null;
  }

  // js.Values Go currently holds: the live ids of wasm_exec.js' ref table, i.e. slots of
  // `_values` beyond the predefined ones that are not waiting in `_idPool` for reuse.
  // wasm_exec.js deletes both at exit, so an exited instance has none.
  refsLive() {
    const go = this.go;
    return guard(() => {
      const { values, pool } = refTable(go);
      if (!$isArray(values) || !$isArray(pool)) {
        return null;
      }
      // TinyGo's glue has no predefined slots (and never frees: its count only grows).
      return values.length - (this.flavour === "tinygo" ? 0 : PREDEFINED_REFS) - pool.length;
    });
  }

  // Exit as seen by the `runtime.wasmExit` import (withShimImports) or through `go.exit(code)`
  // (hookExit), or failing both, inferred from the `exited` flag wasm_exec.js sets then.
  markExited(code, observed) {
    if (this.exited) {
      return false;
    }
    this.exited = true;
    this.exitCode = Number.isInteger(code) ? code : null;
    this.exitObserved = observed;
    if (this.pending !== null) {
      guard(() => this.settle()); // its wrapper keeps its id for attribution after the exit
    }
    return true;
  }

  snapshot() {
    if (!this.exited && guard(() => this.go.exited === true)) {
      this.markExited(null, false);
    }
    return {
      iid: this.iid,
      mode: this.mode,
      module: this.module,
      started: this.startedAt,
      created: this.funcsCreated,
      calls: this.calls,
      afterExit: this.callsAfterExit,
      exited: this.exited,
      code: this.exitCode,
      refs: this.exited ? null : this.refsLive(),
      memory: this.memoryBytes(),
      durations: TIMING_SAMPLE === 0 ? null : this.timing.snapshot(),
      accounting: this.accounting,
      flavour: this.flavour,
      released: this.accounting === "exact" ? this.funcsReleased : null,
      afterRelease: this.callsAfterRelease,
      probes: this.probeReadings(),
      sites: this.accounting === "exact" && !this.exited ? this.topSites(TOP_SITES) : [],
    };
  }

  // Readings of the count probes; null where the module has no such probe.
  probeReadings() {
    const ctx = this.probes;
    if (ctx === null || this.exited) {
      return null;
    }
    const created = ctx.readCounter("goroutinesCreated");
    const exited = ctx.readCounter("goroutinesExited");
    return {
      goroutines: created === null || exited === null ? null : created - exited,
      gcCycles: ctx.readCounter("gcCycles"),
      recoveredPanics: ctx.readCounter("recoveredPanics"),
    };
  }
}

const TOP_SITES = 20;

// Creation times of funcs, for the age of the oldest live one: the clock as of the latest
// snapshot (main.js refreshes it), not Date.now() per js.FuncOf (~40 ns on a ~2.6 us cycle).
// Ages are then late by at most one poll interval.
let coarseNow = $now();

// The funcs one Go function created: counts, and creation order for the oldest live one.
// `order` holds wrapper, time, wrapper, time, ... in creation order; released ones are skipped
// from the front when the oldest is asked for, and dropped everywhere whenever the list has
// grown to several times what is live (else a site whose first func lives forever would keep
// every later one listed: a leak in a monitor that runs for weeks).
class FuncSite {
  constructor(index) {
    this.index = index;
    this.created = 0;
    this.released = 0;
    this.order = []; // entries are order[head .. size)
    this.head = 0;
    this.size = 0; // not order.length: clear() keeps the array's storage (a FuncOf that is
    // released at once would otherwise free it and allocate a new one every cycle)
    this.compactAt = 4096; // size that triggers the next compact()
  }

  add(wrapper, born) {
    this.order[this.size] = wrapper;
    this.order[this.size + 1] = born;
    this.size += 2;
    if (this.size >= this.compactAt) {
      this.compact();
    }
  }

  clear() {
    this.head = 0;
    this.size = 0;
    if (this.order.length > 4096) {
      this.order.length = 0; // a big list would keep released wrappers alive until overwritten
    }
  }

  compact() {
    const order = this.order;
    let kept = 0;
    for (let i = this.head; i < this.size; i += 2) {
      if (order[i][FUNC_SITE] === this) {
        order[kept] = order[i];
        order[kept + 1] = order[i + 1];
        kept += 2;
      }
    }
    order.length = kept; // drops the released wrappers that were listed after the live ones
    this.head = 0;
    this.size = kept;
    this.compactAt = Math.max(4096, kept * 4);
  }

  oldestLive() {
    while (this.head < this.size && this.order[this.head][FUNC_SITE] !== this) {
      this.head += 2;
    }
    if (this.head > 4096 && this.head * 2 > this.size) {
      this.compact();
    }
    return this.head < this.size ? this.order[this.head + 1] : null;
  }
}

// wasm_exec.js' ref table: `_values` and `_idPool`, found by shape when a property-mangling
// minifier renamed them (they are only used from JS): `_values` is the array whose slots 5 and 6
// are globalThis and the Go object (run() seeds them so); `_idPool` is the other array of ids
// (`_goRefCounts` starts with Infinity).
function refTable(go) {
  if ($isArray(go._values) && $isArray(go._idPool)) {
    return { values: go._values, pool: go._idPool };
  }
  let values = null;
  let pool = null;
  for (const key of Object.keys(go)) {
    const v = go[key];
    if (!$isArray(v) || key === "argv") {
      continue;
    }
    if (v.length > 6 && v[5] === globalThis && v[6] === go) {
      values = v;
    } else if (v[0] !== Infinity && v.every((x) => typeof x === "number")) {
      pool = v;
    }
  }
  return { values, pool };
}

const records = []; // in creation order, bounded by MAX_INSTANCES
const recordByGo = new $WeakMap();
let nextIid = 1;
let instancesDropped = 0;

// The record of a Go object, created on first sight. `mode` only matters for a new record.
function recordFor(go, mode) {
  let rec = recordByGo.get(go);
  if (rec !== undefined) {
    return rec;
  }
  rec = new GoInstanceRecord(go, nextIid++, mode);
  recordByGo.set(go, rec);
  records.push(rec);
  if (records.length > MAX_INSTANCES) {
    // Forget the oldest exited instance first; a page that keeps starting instances must not
    // grow this list (or the snapshot) without bound.
    let victim = records.findIndex((r) => r.exited);
    if (victim < 0) {
      victim = 0;
    }
    records.splice(victim, 1);
    instancesDropped++;
  }
  return rec;
}

// What is executing Go code right now, innermost last: Go calls back into JS (and JS into Go)
// synchronously, so the top entry names the instance whose runtime is writing to fd 2, and the
// callback (or timer, or `run`) that was executing when it exits.
//   { rec, kind: "run" | "callback" | "timer", funcId, event }
const active = [];

function enter(entry) {
  active.push(entry);
}

function leave(entry) {
  if (pushTimer === null && PUSH_MS > 0) {
    schedulePush(); // everything a Go program changes, it changes inside a call like this one
  }
  if (active.length > 0 && active[active.length - 1] === entry) {
    active.pop(); // the usual case; lastIndexOf + splice cost ~60 ns per callback
    return;
  }
  const i = active.lastIndexOf(entry);
  if (i >= 0) {
    active.splice(i, 1);
  }
}

function currentEntry(rec) {
  for (let i = active.length - 1; i >= 0; i--) {
    if (active[i].rec === rec) {
      return active[i];
    }
  }
  return null;
}

function currentRecord() {
  if (active.length > 0) {
    return active[active.length - 1].rec;
  }
  return records.length > 0 ? records[records.length - 1] : null;
}

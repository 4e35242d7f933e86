// go_hooks.js: hooks on wasm_exec.js' `Go` class (the same members in Go 1.21 to 1.27; see
// shared/reference/go-wasm-runtime.md section 2).
//
//   Go.prototype.run(instance)    app code calls it once per instance; we see the instance start
//                                 and keep `instance.exports.mem`.
//   Go.prototype._makeFuncWrapper(id)
//                                 called by Go (`jsGo.Call("_makeFuncWrapper", id)`, a dynamic
//                                 lookup) exactly once per js.FuncOf: the registration count.
//   Go.prototype._resume()        every JS->Go entry goes through it: a callback wrapper after
//                                 setting `_pendingEvent`, a Go timer's setTimeout with none. It
//                                 throws "Go program has already exited" once `exited` is set.
//   go.exit(code)                 own property set by the constructor, called by the
//                                 `runtime.wasmExit` import after it set `exited` and deleted
//                                 the ref table. Hooked only for instances the shim did not
//                                 instantiate; the others' `runtime.wasmExit` import is wrapped
//                                 (withShimImports in probes.js), which keeps the Go object fast.
//
// Prototype hooks work at any time, so the same code serves pages instrumented late: an instance
// the shim never saw start is recorded on its first callback or timer, or handed over by the
// daemon (adopt() in main.js) when it is idle.

function patchGoClass(GoClass) {
  if (typeof GoClass !== "function") {
    return false;
  }
  const proto = guard(() => GoClass.prototype);
  if (!proto || typeof proto !== "object") {
    return false;
  }
  wrapFunction(proto, "run", "Go.run", (original) =>
    function run(instance) {
      if (!(instance instanceof WebAssembly.Instance)) {
        return $apply(original, this, arguments); // the original throws its own error
      }
      const rec = guard(() => {
        const r = recordFor(this, "early");
        startInstance(this, r, instance);
        return r;
      });
      if (rec === undefined) {
        return $apply(original, this, arguments);
      }
      const entry = { rec, kind: "run", funcId: null, event: null };
      enter(entry);
      try {
        return $apply(original, this, arguments);
      } finally {
        leave(entry);
      }
    });

  wrapFunction(proto, "_makeFuncWrapper", "Go._makeFuncWrapper", (original) =>
    function _makeFuncWrapper(id) {
      // [id], not `arguments`: V8 materializes an arguments object for $apply (~6 ns a call).
      const wrapper = $apply(original, this, [id]);
      try {
        // No guard(): a closure per js.FuncOf is measurable on the FuncOf+Release cycle.
        (this === lastGo ? lastRec : recordOf(this)).onCreate(wrapper, id);
      } catch (_) {
        shimErrors++;
      }
      return wrapper;
    });

  // `_resume` is only called from JS, so a property-mangling minifier may have renamed it: then
  // it is the method that throws "Go program has already exited".
  const resumeName = typeof proto._resume === "function" ? "_resume" : methodContaining(proto, "has already exited");
  wrapFunction(proto, resumeName || "_resume", "Go._resume", (original) =>
    function _resume() {
      const rec = this === lastGo ? lastRec : guard(() => recordOf(this));
      if (rec === undefined) {
        return $apply(original, this, arguments);
      }
      const event = this._pendingEvent;
      const isCallback = event !== null && typeof event === "object";
      if (this.exited === true) {
        // The original throws "Go program has already exited": a JS caller of a dead
        // instance's callback, or a Go timer that was still pending at exit.
        rec.callsAfterExit++;
        guard(() => reportLateCall(rec, isCallback ? event.id : null));
        return $apply(original, this, arguments);
      }
      if (!isCallback) {
        const entry = { rec, kind: "timer", funcId: null, event: null };
        enter(entry);
        try {
          return $apply(original, this, NO_ARGS);
        } finally {
          leave(entry);
        }
      }
      rec.calls++;
      const entry = { rec, kind: "callback", funcId: event.id, event };
      enter(entry);
      const token = rec.timing.begin();
      try {
        return $apply(original, this, NO_ARGS);
      } finally {
        rec.timing.end(token);
        leave(entry);
      }
    });
  return true;
}

function methodContaining(proto, text) {
  return guard(() => Object.getOwnPropertyNames(proto).find((name) => {
    if (name === "constructor") {
      return false; // its source is the whole class
    }
    const desc = $getOwnPropertyDescriptor(proto, name);
    return desc && typeof desc.value === "function" && Function.prototype.toString.call(desc.value).includes(text);
  })) || null;
}

// The record of a Go object that reached a hook: instances the shim did not see start (it was
// injected late, or `run` could not be hooked) are recorded here, as "late".
function recordOf(go) {
  let rec = recordByGo.get(go);
  if (rec === undefined) {
    rec = recordFor(go, "late");
    startInstance(go, rec, guard(() => go._inst));
  }
  lastGo = go; // a Go object's record never changes: the hooks' one-entry cache (a WeakMap
  lastRec = rec; // lookup is ~4 ns of a ~2 us FuncOf+Release cycle)
  return rec;
}

let lastGo = null;
let lastRec = null;
// `_resume()` takes no arguments: an empty list instead of the caller's `arguments`, which V8
// would materialize for every callback.
const NO_ARGS = Object.freeze([]);

function startInstance(go, rec, instance) {
  if (rec.announced) {
    return;
  }
  rec.announced = true;
  guard(() => {
    rec.memory = instance.exports.mem || instance.exports.memory; // Go: mem, TinyGo: memory
  });
  const ctx = guard(() => contextOf.get(instance));
  if (ctx !== undefined && rec.mode === "early") {
    ctx.go = go;
    rec.linkProbes(ctx);
  }
  rec.flavour = ctx !== undefined ? ctx.probes.flavour : guard(() => go.importObject.wasi_snapshot_preview1) ? "tinygo" : "go";
  rec.module = moduleURLFor(instance);
  if (missingHooks.has("setTimeout") || missingHooks.has("setInterval")) {
    guard(hookTimers); // a worker's timers exist by the time its Go program starts
  }
  hookWriteSync();
  if (ctx !== undefined && ctx.exitImport && rec.flavour === "go") {
    ctx.exitRec = rec; // the instance's runtime.wasmExit import reports its exit (withShimImports)
  } else {
    hookExit(go, rec);
  }
  if (rec.mode === "late" && go.exited === true) {
    rec.markExited(null, false);
  }
  emit("instance_start", { iid: rec.iid, mode: rec.mode, module: rec.module, accounting: rec.accounting });
}

// For an instance the shim did not instantiate (its imports are the page's own), `go.exit`
// becomes an accessor, so that an app that assigns its own exit handler (as Node's runner does)
// keeps it, and we still see the code first. Only then: turning a data property into an accessor
// puts the Go object in V8's dictionary mode, and every `this.mem`, `this._values`, ... in
// wasm_exec.js becomes a slow lookup (measured: most of the shim's cost on FuncOf+Release,
// bench/worker_ab.py). Instances the shim instantiated report their exit from `runtime.wasmExit`.
function hookExit(go, rec) {
  const desc = guard(() => $getOwnPropertyDescriptor(go, "exit"));
  if (desc !== undefined && !desc.configurable) {
    missingHooks.add("go.exit");
    return;
  }
  let appExit = desc === undefined ? undefined : desc.get ? guard(() => desc.get.call(go)) : desc.value;
  const observedExit = function exit(code) {
    guard(() => onExit(rec, code));
    if (typeof appExit === "function") {
      return $apply(appExit, this, arguments);
    }
    return undefined;
  };
  guard(() =>
    $defineProperty(go, "exit", {
      configurable: true,
      enumerable: true,
      get() {
        return observedExit;
      },
      set(value) {
        appExit = value;
      },
    }),
  );
}

function onExit(rec, code) {
  if (!rec.markExited(code, true)) {
    return;
  }
  const stderr = rec.stderr.report();
  // Kept: a daemon that was disconnected when it was sent asks for it again (resendEnds).
  rec.exitEvent = {
    iid: rec.iid,
    code: rec.exitCode,
    stderr: stderr.text,
    stderrTruncated: stderr.truncated,
    cause: causeOf(currentEntry(rec)),
    instance: rec.snapshot(),
  };
  emit("exit", rec.exitEvent);
}

// The exit events of this document's ended instances, sent again: the binding call of an exit
// that happened while the daemon was disconnected reached no one. The daemon records an end once,
// so a repeat of one it has changes nothing.
function resendEnds() {
  for (const rec of records) {
    if (rec.exitEvent !== undefined) {
      emit("exit", rec.exitEvent);
    }
  }
}

// The first few calls into a dead instance are reported with their JS stack: they name the code
// that still relies on it. The rest are only counted.
const LATE_CALLS_REPORTED = 3;

function reportLateCall(rec, funcId, exportName = null) {
  if (rec.lateCallsReported >= LATE_CALLS_REPORTED) {
    return;
  }
  rec.lateCallsReported++;
  emit("after_exit", {
    iid: rec.iid,
    funcId: funcId,
    funcName: exportName !== null ? "wasmexport " + exportName : funcId === null ? null : exportNameOf(funcId),
    jsStack: jsStack(),
    count: rec.callsAfterExit,
  });
}

// wasm_exec.js runs `globalThis.Go = class { ... }` once. An accessor in its place lets the shim
// patch the class the moment it is defined, before any app code can call `new Go()`.
function trapGoGlobal() {
  const desc = $getOwnPropertyDescriptor(globalThis, "Go");
  if (desc !== undefined) {
    // Already defined (late injection) or trapped by someone else: patch what is there.
    guard(() => patchGoClass(globalThis.Go));
    return;
  }
  let current;
  $defineProperty(globalThis, "Go", {
    configurable: true,
    enumerable: true,
    get() {
      return current;
    },
    set(value) {
      current = value;
      guard(() => patchGoClass(value));
      scheduleWarmUp(); // wasm_exec.js just ran: a Go module is coming, warm the rewrite up meanwhile
    },
  });
}

// attribution.js: which callback was running when an instance died, and who still calls it.
//
// All of this is looked up only when an instance exits (or is called after it exited), never on
// the hot path, except for two cheap notes: each js.FuncOf wrapper's id (a property set from the
// `_makeFuncWrapper` hook, for an exactly accounted instance once the func outlives the next
// event: GoInstanceRecord.onCreate) and, for Go wrappers handed to addEventListener/setTimeout/
// setInterval, what they were registered as (a bounded Map keyed by func id).

// Go func id of a wrapper returned by _makeFuncWrapper, kept on the wrapper under a symbol: a
// WeakMap entry per js.FuncOf cost 0.1-0.2 us (ephemeron table growth and GC) on a ~2.6 us
// FuncOf+Release cycle; a property store on wrappers that all share one hidden class is ~5 ns.
const FUNC_ID = Symbol("gowasm-exporter.funcId");
const funcIdOf = {
  get(fn) {
    if (typeof fn !== "function") {
      return undefined;
    }
    const id = fn[FUNC_ID];
    return id !== undefined ? id : pendingIdOf(fn);
  },
  has(fn) {
    return funcIdOf.get(fn) !== undefined;
  },
  set(fn, id) {
    fn[FUNC_ID] = id;
  },
};
// The latest js.FuncOf of an exact instance is marked only once it outlives the next event
// (GoInstanceRecord.onCreate): until then its id is the record's.
function pendingIdOf(fn) {
  for (const rec of records) {
    if (rec.pending === fn) {
      return rec.pendingId;
    }
  }
  return undefined;
}

const registrations = new Map(); // func id -> { as, type?, target?, delay? }, bounded
const MAX_REGISTRATIONS = 4096;
const MAX_TEXT = 200;

function noteRegistration(fn, info) {
  const id = funcIdOf.get(fn);
  if (id === undefined) {
    return;
  }
  if (registrations.size >= MAX_REGISTRATIONS && !registrations.has(id)) {
    registrations.delete(registrations.keys().next().value); // oldest first
  }
  registrations.set(id, info);
}

function clip(text) {
  const s = String(text);
  return s.length > MAX_TEXT ? s.slice(0, MAX_TEXT) : s;
}

// "button#panic.primary", "window", "document": enough to find the element, never its content.
function describeTarget(target) {
  return guard(() => {
    if (target === globalThis) {
      return "window";
    }
    if (typeof Document === "function" && target instanceof Document) {
      return "document";
    }
    if (typeof Element === "function" && target instanceof Element) {
      let s = target.tagName.toLowerCase();
      if (target.id) {
        s += "#" + target.id;
      }
      if (typeof target.className === "string" && target.className.trim() !== "") {
        s += "." + target.className.trim().split(/\s+/).slice(0, 3).join(".");
      }
      return clip(s);
    }
    const name = target && target.constructor && target.constructor.name;
    return typeof name === "string" ? clip(name) : null;
  }) ?? null;
}

function hookRegistrations() {
  const ET = typeof EventTarget === "function" ? EventTarget : null;
  if (ET !== null) {
    wrapFunction(ET.prototype, "addEventListener", "EventTarget.addEventListener", (original) =>
      function addEventListener(type, listener) {
        if (typeof listener === "function" && funcIdOf.has(listener)) {
          guard(() => noteRegistration(listener, { as: "listener", type: clip(type), target: describeTarget(this) }));
        }
        return $apply(original, this, arguments);
      });
  }
  hookTimers();
}

// setTimeout/setInterval: hooked at load, and again when a Go program starts if they were not
// there yet (a dedicated worker paused before its first script has no timers).
function hookTimers() {
  for (const name of ["setTimeout", "setInterval"]) {
    missingHooks.delete(name);
    wrapFunction(globalThis, name, name, (original) =>
      function timer(handler, delay) {
        if (typeof handler === "function" && funcIdOf.has(handler)) {
          guard(() => noteRegistration(handler, { as: name, delay: Number(delay) || 0 }));
        }
        return $apply(original, this, arguments);
      });
  }
}

// Go reports a call of a released func by calling `console.error("call to released function")`
// from inside the callback (syscall/js handleEvent), and returns undefined to JS.
function hookReleasedCalls() {
  const con = guard(() => globalThis.console);
  if (!con) {
    missingHooks.add("console.error");
    return;
  }
  wrapFunction(con, "error", "console.error", (original) =>
    function error(message) {
      if (active.length > 0 && message === "call to released function" && arguments.length === 1) {
        guard(() => {
          active[active.length - 1].rec.callsAfterRelease++;
        });
      }
      return $apply(original, this, arguments);
    });
}

// The global name a func was exported under ("ledger.panic", "onSave"), searched on demand:
// own properties of the global object and of the plain objects directly under it, bounded.
function exportNameOf(id) {
  return guard(() => {
    const names = Object.getOwnPropertyNames(globalThis);
    const nested = [];
    for (let i = 0; i < names.length && i < 5000; i++) {
      const name = names[i];
      const desc = $getOwnPropertyDescriptor(globalThis, name);
      if (!desc || !("value" in desc)) {
        continue; // never run getters of the page
      }
      const value = desc.value;
      if (typeof value === "function" && funcIdOf.get(value) === id) {
        return name;
      }
      if (value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
        nested.push([name, value]);
      }
    }
    for (const [outer, obj] of nested.slice(0, 200)) {
      const keys = Object.getOwnPropertyNames(obj);
      for (let i = 0; i < keys.length && i < 500; i++) {
        const desc = $getOwnPropertyDescriptor(obj, keys[i]);
        if (desc && "value" in desc && typeof desc.value === "function" && funcIdOf.get(desc.value) === id) {
          return clip(outer + "." + keys[i]);
        }
      }
    }
    return null;
  }) ?? null;
}

function jsStack() {
  return guard(() => {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 50;
    const stack = new Error().stack;
    Error.stackTraceLimit = limit;
    return typeof stack === "string" ? stack.split("\n").slice(1).join("\n").slice(0, 8192) : null;
  }) ?? null;
}

// What the instance was doing: an entry pushed by the run/_resume hooks (go_hooks.js).
function causeOf(entry) {
  if (entry === null) {
    return { entry: "unknown" };
  }
  const cause = { entry: entry.kind };
  if (entry.kind === "export") {
    cause.funcName = "wasmexport " + entry.exportName;
  }
  if (entry.kind === "callback") {
    cause.funcId = entry.funcId;
    cause.funcName = exportNameOf(entry.funcId);
    const reg = registrations.get(entry.funcId);
    if (reg !== undefined) {
      cause.registeredAs = reg;
    }
    const arg = guard(() => entry.event.args[0]);
    if (typeof Event === "function" && arg instanceof Event) {
      cause.eventType = clip(arg.type);
      cause.eventTarget = describeTarget(arg.target);
    }
  }
  cause.jsStack = jsStack();
  return cause;
}

// report.js: the one place that talks to the daemon.
//
// Events (instance start, exit, the final snapshot of a document) are pushed through the CDP
// binding as one JSON string each; gauges and counters are pulled by the daemon, which calls
// snapshot() (main.js) with Runtime.evaluate. The binding is a plain global function that any
// page script could also call or replace, so the daemon treats every payload as untrusted.

let bindingFn = null;

// Re-read the binding: called at start-up and by the daemon after it (re)attaches, because a
// binding added by a new CDP session is a new function.
function rebind() {
  const candidate = guard(() => globalThis[CONFIG.binding]);
  if (typeof candidate === "function") {
    bindingFn = candidate;
  }
  return bindingFn !== null;
}

let eventsSent = 0;
let eventsFailed = 0;

function emit(type, fields) {
  if (bindingFn === null && !rebind()) {
    eventsFailed++;
    return;
  }
  try {
    const payload = { v: SHIM_VERSION, type: type, doc: DOC_ID, t: $now() };
    for (const key in fields) {
      payload[key] = fields[key];
    }
    bindingFn($stringify(payload));
    eventsSent++;
  } catch (_) {
    eventsFailed++;
  }
}

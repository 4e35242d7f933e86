// report.js: the one place that talks to the daemon.
//
// Events (instance start, exit, calls after exit, the final snapshot of a document) are pushed
// through the CDP binding as one JSON string each; gauges and counters are pulled by the daemon,
// which calls snapshot() (main.js) with Runtime.evaluate. The binding is a plain global function
// that any page script could also call or replace, so the daemon treats every payload as
// untrusted.
//
// A new document can start before Chromium installed the binding in it (a tab navigated while
// the daemon was still setting it up): events are then held in a small queue and sent when the
// binding appears, which the daemon makes sure of on its next poll.

let bindingFn = null;
const pending = []; // serialised events waiting for the binding, bounded
const MAX_PENDING = 64;

// Re-read the binding: at start-up, on every poll while it is missing, and when the daemon
// re-attaches (a binding added by a new CDP session is a new function; `reattached`: the daemon
// may have missed events meanwhile, and the exits among them are sent again).
function rebind(reattached) {
  const candidate = guard(() => globalThis[CONFIG.binding]);
  if (typeof candidate === "function") {
    bindingFn = candidate;
    flushPending();
    if (reattached === true) {
      guard(resendEnds);
    }
  }
  return bindingFn !== null;
}

// Push mode (CONFIG.pushMs): instead of waiting to be polled, the snapshot is sent pushMs after
// the first call into Go since the last push, so an idle page sends nothing and a busy one one
// snapshot per pushMs; the daemon then polls only rarely (page metrics, liveness). The timer is
// armed from leave() (instances.js), whatever the kind of call (run, callback, Go timer, export).
const PUSH_MS = clampInt(CONFIG.pushMs, 0, 3600000, 0);
let pushTimer = null;
// A worker paused before its first script has no setTimeout yet (seen on Chromium 156): the
// timer function is taken when it is first needed (webGlobal).
let pushSetTimeout = $setTimeout;

function schedulePush() {
  if (pushSetTimeout === null) {
    const candidate = webGlobal("setTimeout");
    if (typeof candidate !== "function") {
      return;
    }
    pushSetTimeout = candidate;
  }
  pushTimer = $apply(pushSetTimeout, globalThis, [pushNow, PUSH_MS]);
}

function pushNow() {
  pushTimer = null;
  guard(() => emit("snapshot", { snapshot: snapshot(), live: true }));
}

let eventsSent = 0;
let eventsFailed = 0;

function send(payload) {
  try {
    bindingFn(payload);
    eventsSent++;
  } catch (_) {
    eventsFailed++;
  }
}

function flushPending() {
  while (pending.length > 0 && bindingFn !== null) {
    send(pending.shift());
  }
}

function emit(type, fields) {
  let payload;
  try {
    const event = { v: SHIM_VERSION, type: type, doc: DOC_ID, t: $now() };
    for (const key in fields) {
      event[key] = fields[key];
    }
    payload = $stringify(event);
  } catch (_) {
    eventsFailed++;
    return;
  }
  if (bindingFn === null && !rebind()) {
    if (pending.length >= MAX_PENDING) {
      pending.shift();
      eventsFailed++;
    }
    pending.push(payload);
    return;
  }
  send(payload);
}

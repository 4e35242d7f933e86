// prelude.js: the shim's guard and the built-ins it keeps for itself.
//
// The daemon wraps the concatenated modules as `(function (CONFIG) { ... })(config)`, so every
// module shares one function scope and nothing leaks into the page's globals except the one
// non-enumerable, symbol-keyed API object installed by main.js.
//
// CONFIG (from the daemon, validated there):
//   binding    name of the CDP binding (Runtime.addBinding) that carries events to the daemon
//   maxStderr  bound, in characters, on the fd-2 text kept per Go instance
//   maxInstances  bound on the Go instances remembered per document
//   longCallMs  callbacks longer than this count as long (default 50)
//   timingSample  every Nth callback of an instance is timed for the duration histogram (default 16)
//   pushMs     push mode (0: off): the snapshot is sent this long after a call into Go, at most
//              once per pushMs, instead of waiting for the daemon's poll

"use strict";

const SHIM_KEY = Symbol.for("gowasm-exporter.shim");
const SHIM_VERSION = 1;

// Injected twice (the new-document script and a late Runtime.evaluate can both run during a
// navigation, see shared/reference/cdp.md): the first copy wins, the second does nothing.
if (globalThis[SHIM_KEY]) {
  return;
}

// Built-ins captured before any page script runs (in early mode), so that a page that later
// replaces them cannot break or blind the shim.
const $apply = Reflect.apply;
const $defineProperty = Object.defineProperty;
const $getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
const $stringify = JSON.stringify;
const $isArray = Array.isArray;
const $now = Date.now;
const $setTimeout = typeof setTimeout === "function" ? setTimeout : null;
const $WeakMap = WeakMap;
const $toString = Object.prototype.toString;
const $customSections = typeof WebAssembly === "object" && WebAssembly !== null &&
  typeof WebAssembly.Module === "function" ? WebAssembly.Module.customSections : null;
const $TextDecoder = typeof TextDecoder === "function" ? TextDecoder : null;

// A dedicated worker paused before its first script (where the daemon evaluates the shim) has
// the JavaScript built-ins but not yet the web APIs (setTimeout, performance, TextDecoder: seen
// on Chromium 156). Those are taken from the global scope when first needed instead.
function webGlobal(name) {
  const value = guard(() => globalThis[name]);
  return value === undefined ? null : value;
}

function textDecoderClass() {
  if ($TextDecoder !== null) {
    return $TextDecoder;
  }
  const candidate = webGlobal("TextDecoder");
  return typeof candidate === "function" ? candidate : null;
}

const MAX_STDERR = clampInt(CONFIG.maxStderr, 1024, 1 << 20, 65536);
const MAX_INSTANCES = clampInt(CONFIG.maxInstances, 1, 4096, 64);

function clampInt(value, lo, hi, fallback) {
  return Number.isInteger(value) && value >= lo && value <= hi ? value : fallback;
}

// A per-document id lets the daemon tell a reloaded page's instances from the previous ones.
const DOC_ID = $now().toString(36) + "-" + Math.random().toString(36).slice(2, 10);

// Failures inside hooks are counted and swallowed: the shim must never break the page.
let shimErrors = 0;
function guard(fn) {
  try {
    return fn();
  } catch (_) {
    shimErrors++;
    return undefined;
  }
}

// Hooks that could not be installed (feature detection), reported in every snapshot.
const missingHooks = new Set();

// Test helpers: the shim as the daemon injects it, the toolchains' own wasm_exec.js, and Go apps
// compiled for js/wasm during the test run. Each test gets a fresh V8 context (node:vm), so the
// shim, wasm_exec.js and the app see a clean global scope, as a new page would.

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import vm from "node:vm";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const instrumentDir = path.resolve(here, "..");
export const repoRoot = path.resolve(instrumentDir, "..");

export const BINDING = "__gowasmTestBinding";

// The injected text, composed exactly as daemon/gowasm_exporter/shim.py composes it.
export function shimSource(config = {}) {
  const manifest = JSON.parse(fs.readFileSync(path.join(instrumentDir, "manifest.json"), "utf8"));
  const body = manifest.files
    .map((f) => fs.readFileSync(path.join(instrumentDir, f), "utf8"))
    .join("\n");
  const cfg = { binding: BINDING, maxStderr: 65536, maxInstances: 64, timingSample: 1, ...config };
  return `(function (CONFIG) {\n${body}\n})(${JSON.stringify(cfg)});\n`;
}

// Go roots to test: GOWASM_GO_ROOTS (path-separated) or every toolchain under .toolchains/.
export function goRoots() {
  const fromEnv = process.env.GOWASM_GO_ROOTS;
  if (fromEnv) {
    return fromEnv.split(path.delimiter).filter(Boolean);
  }
  const dir = path.join(repoRoot, ".toolchains");
  if (!fs.existsSync(dir)) {
    return [];
  }
  return fs
    .readdirSync(dir)
    .map((d) => path.join(dir, d, "go"))
    .filter((root) => fs.existsSync(path.join(root, "bin", "go")))
    .sort();
}

export function goVersion(root) {
  return fs.readFileSync(path.join(root, "VERSION"), "utf8").split("\n")[0].trim();
}

// wasm_exec.js moved from misc/wasm (<= 1.23) to lib/wasm (>= 1.24).
export function wasmExecPath(root) {
  for (const dir of ["lib/wasm", "misc/wasm"]) {
    const p = path.join(root, dir, "wasm_exec.js");
    if (fs.existsSync(p)) {
      return p;
    }
  }
  throw new Error(`no wasm_exec.js under ${root}`);
}

const builtDir = fs.mkdtempSync(path.join(os.tmpdir(), "gowasm-shim-test-"));
const builds = new Map();

// Compile tests/apps/<app> (or an absolute dir) with the toolchain at root; cached per process.
export function buildApp(root, app, { ldflags = "" } = {}) {
  const key = `${root}|${app}|${ldflags}`;
  if (builds.has(key)) {
    return builds.get(key);
  }
  const src = path.isAbsolute(app) ? app : path.join(repoRoot, "tests", "apps", app);
  const out = path.join(builtDir, `${path.basename(src)}-${goVersion(root)}-${builds.size}.wasm`);
  const args = ["build", "-o", out];
  if (ldflags) {
    args.push(`-ldflags=${ldflags}`);
  }
  args.push(".");
  execFileSync(path.join(root, "bin", "go"), args, {
    cwd: src,
    env: {
      ...process.env,
      GOOS: "js",
      GOARCH: "wasm",
      GOROOT: root,
      GOTOOLCHAIN: "local",
      GOPROXY: "off",
      GOCACHE: path.join(repoRoot, ".cache", `gocache-${goVersion(root)}`),
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const bytes = fs.readFileSync(out);
  builds.set(key, bytes);
  return bytes;
}

// A fresh global scope with what wasm_exec.js and the shim use from a browser page, plus the
// binding (events land in `page.events`) and a console that records instead of printing.
export function newPage() {
  const events = [];
  const logs = [];
  const record = (level) => (...args) => logs.push({ level, text: args.map(String).join(" ") });
  const context = vm.createContext({
    console: { log: record("log"), warn: record("warn"), error: record("error"), info: record("info") },
    TextEncoder,
    TextDecoder,
    crypto: globalThis.crypto,
    performance: globalThis.performance,
    setTimeout,
    clearTimeout,
    queueMicrotask,
    Response,
    [BINDING]: (payload) => events.push(JSON.parse(payload)),
  });
  vm.runInContext("globalThis.window = globalThis;", context);
  return {
    context,
    events,
    logs,
    run(code) {
      return vm.runInContext(code, context);
    },
    injectShim(config) {
      vm.runInContext(shimSource(config), context);
    },
    loadWasmExec(root) {
      vm.runInContext(fs.readFileSync(wasmExecPath(root), "utf8"), context, { filename: "wasm_exec.js" });
    },
    snapshot() {
      return vm.runInContext('globalThis[Symbol.for("gowasm-exporter.shim")].snapshot()', context);
    },
  };
}

// Start a Go program the way a page does, resolving once the ledger app announced itself.
export async function startLedger(page, bytes) {
  page.context.__bytes = bytes;
  const ready = new Promise((resolve) => {
    page.context.onLedgerReady = resolve;
  });
  page.run(`
    globalThis.go = new Go();
    globalThis.runPromise = WebAssembly.instantiate(__bytes, go.importObject).then((r) => {
      globalThis.wasmInstance = r.instance;
      return go.run(r.instance);
    });
  `);
  await ready;
  return page.run("ledger");
}

export function instanceSnapshots(page) {
  return page.snapshot().instances;
}

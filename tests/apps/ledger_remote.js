// The ledger test app driven by messages, for the contexts page: the same file runs in a worker
// (importScripts) and in an iframe (ledger_remote.html). The ledger's Go program sets
// globalThis.ledger; each message {id, method, arg} calls ledger[method](arg) and is answered
// with {id, value, stats}, the app's own numbers to compare the exporter's with.
(function () {
  const post = typeof window === "undefined" ? (msg) => postMessage(msg) : (msg) => parent.postMessage(msg, "*");
  const ready = new Promise((resolve) => { globalThis.onLedgerReady = resolve; });
  const go = new Go();
  WebAssembly.instantiateStreaming(fetch("ledger/main.wasm"), go.importObject).then((result) => go.run(result.instance));
  ready.then(() => post({ ready: true, stats: globalThis.ledger.stats() }));
  addEventListener("message", (event) => {
    const { id, method, arg } = event.data;
    let value = null;
    let error = null;
    try {
      const result = globalThis.ledger[method](arg);
      value = typeof result === "number" ? result : null;
    } catch (e) {
      error = String(e);
    }
    let stats = null;
    try {
      stats = globalThis.ledger.stats();
    } catch (_) {
      // the Go program is gone (it panicked or exited)
    }
    post({ id, value, error, stats });
  });
})();

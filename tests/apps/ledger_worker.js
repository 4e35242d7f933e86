// A dedicated worker running the ledger app (see ledger_remote.js).
importScripts("wasm_exec.js", "ledger_remote.js");

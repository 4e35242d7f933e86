// stderr.js: the Go runtime's fd-2 output (panic and fatal-error text with goroutine traces).
//
// The runtime prints through the `runtime.wasmWrite` import, which calls `fs.writeSync(fd, bytes)`
// with `fs` resolved from the global scope at every call, in many small chunks (about 45 for a
// short callback panic). wasm_exec.js installs its `fs` polyfill only when the page has none, so
// the shim wraps `writeSync` on whatever `globalThis.fs` is once Go is about to run; it mutates
// the object rather than replacing it, because Go's syscall package captured the object at init.

const PANIC_START = /(^|\n)(panic: |fatal error: )/;
const RUNTIME_LINE = /(^|\n)runtime: [^\n]*\n$/;

class StderrCapture {
  constructor() {
    const Decoder = textDecoderClass();
    this.decoder = Decoder !== null ? new Decoder("utf-8") : null;
    this.tail = ""; // recent output before a panic started, bounded
    this.panic = null; // text from the first "panic: "/"fatal error: " line on, bounded
    this.truncated = false;
  }

  write(bytes) {
    let text;
    if (this.decoder) {
      text = this.decoder.decode(bytes, { stream: true });
    } else {
      text = String.fromCharCode.apply(null, bytes);
    }
    if (this.panic !== null) {
      this.appendPanic(text);
      return;
    }
    this.tail += text;
    const m = PANIC_START.exec(this.tail);
    if (m !== null) {
      let start = m.index + m[1].length;
      // "runtime: out of memory: ..." is printed on the line before "fatal error: out of memory".
      const before = RUNTIME_LINE.exec(this.tail.slice(0, start));
      if (before !== null) {
        start = before.index + before[1].length;
      }
      const panicText = this.tail.slice(start);
      this.tail = this.tail.slice(0, start);
      this.panic = "";
      this.appendPanic(panicText);
    }
    if (this.tail.length > MAX_STDERR) {
      this.tail = this.tail.slice(this.tail.length - (MAX_STDERR >> 1));
    }
  }

  appendPanic(text) {
    const room = MAX_STDERR - this.panic.length;
    if (text.length > room) {
      this.panic += text.slice(0, Math.max(room, 0));
      this.truncated = true;
    } else {
      this.panic += text;
    }
  }

  // What goes with the exit event: the panic text if there was one, otherwise the last few lines.
  report() {
    if (this.panic !== null) {
      return { text: this.panic, truncated: this.truncated, panic: true };
    }
    const tail = this.tail.slice(-4096);
    return { text: tail, truncated: tail.length < this.tail.length, panic: false };
  }
}

const WRAPPED = Symbol("gowasm-exporter.wrapped");

function hookWriteSync() {
  const fs = guard(() => globalThis.fs);
  if (!fs || typeof fs.writeSync !== "function") {
    missingHooks.add("fs.writeSync");
    return;
  }
  if (fs.writeSync[WRAPPED]) {
    return;
  }
  const original = fs.writeSync;
  const writeSync = function writeSync(fd, buf) {
    if (fd === 2) {
      guard(() => {
        const rec = currentRecord();
        if (rec !== null) {
          rec.stderr.write(buf);
        }
      });
    }
    return $apply(original, this, arguments);
  };
  $defineProperty(writeSync, WRAPPED, { value: true });
  guard(() => {
    fs.writeSync = writeSync;
  });
  if (fs.writeSync !== writeSync) {
    missingHooks.add("fs.writeSync");
  } else {
    missingHooks.delete("fs.writeSync");
  }
}

// modules.js: which wasm module (by URL) a Go instance runs, for the daemon's `module` label.
//
// `WebAssembly.instantiateStreaming(response)` hands us the Response and so its URL; bytes that
// reach `WebAssembly.instantiate` are traced back to the Response they were read from (the shim
// notes which ArrayBuffer each `Response.arrayBuffer()` produced). The wrapped functions call the
// originals with the same arguments and return their results unchanged.

const urlOf = new $WeakMap(); // ArrayBuffer | WebAssembly.Module | WebAssembly.Instance -> URL

function remember(key, url) {
  if (key !== null && typeof key === "object" && typeof url === "string" && url !== "") {
    guard(() => urlOf.set(key, url));
  }
}

function noteResult(result, url) {
  if (typeof url !== "string") {
    return;
  }
  if (result instanceof WebAssembly.Instance) {
    remember(result, url);
  } else if (result && typeof result === "object") {
    remember(result.instance, url);
    remember(result.module, url);
  }
}

function wrapFunction(owner, name, label, makeWrapper) {
  const original = guard(() => owner[name]);
  if (typeof original !== "function") {
    missingHooks.add(label);
    return;
  }
  if (original[WRAPPED]) {
    return;
  }
  const wrapper = makeWrapper(original);
  $defineProperty(wrapper, WRAPPED, { value: true });
  $defineProperty(wrapper, "name", { value: original.name, configurable: true });
  $defineProperty(wrapper, "length", { value: original.length, configurable: true });
  guard(() => {
    owner[name] = wrapper;
  });
  if (owner[name] !== wrapper) {
    missingHooks.add(label);
  }
}

function hookModuleLoading() {
  if (typeof WebAssembly !== "object" || WebAssembly === null) {
    missingHooks.add("WebAssembly");
    return;
  }
  const Resp = typeof Response === "function" ? Response : null;
  if (Resp !== null) {
    wrapFunction(Resp.prototype, "arrayBuffer", "Response.arrayBuffer", (original) =>
      function arrayBuffer() {
        const url = guard(() => this.url);
        const promise = $apply(original, this, arguments);
        guard(() => promise.then((buf) => remember(buf, url), () => {}));
        return promise;
      });
  }

  wrapFunction(WebAssembly, "instantiateStreaming", "WebAssembly.instantiateStreaming", (original) =>
    function instantiateStreaming(source) {
      const promise = $apply(original, this, arguments);
      guard(() => {
        Promise.all([Promise.resolve(source), promise]).then(
          ([response, result]) => noteResult(result, guard(() => response.url)),
          () => {},
        );
      });
      return promise;
    });

  wrapFunction(WebAssembly, "instantiate", "WebAssembly.instantiate", (original) =>
    function instantiate(source) {
      const url = guard(() => {
        if (source instanceof ArrayBuffer || source instanceof WebAssembly.Module) {
          return urlOf.get(source);
        }
        if (ArrayBuffer.isView(source)) {
          return urlOf.get(source.buffer);
        }
        return undefined;
      });
      const promise = $apply(original, this, arguments);
      if (url !== undefined) {
        guard(() => promise.then((result) => noteResult(result, url), () => {}));
      }
      return promise;
    });
}

// The module URL of a running instance. Late-found instances were compiled before the shim ran;
// then the page's resource timing entries are the only witness, and they are used only when they
// name exactly one `.wasm` resource.
function moduleURLFor(instance) {
  const known = guard(() => urlOf.get(instance));
  if (typeof known === "string") {
    return known;
  }
  return guard(() => {
    const names = new Set();
    for (const entry of performance.getEntriesByType("resource")) {
      if (/\.wasm(?:$|[?#])/.test(entry.name)) {
        names.add(entry.name);
      }
    }
    return names.size === 1 ? names.values().next().value : null;
  }) ?? null;
}

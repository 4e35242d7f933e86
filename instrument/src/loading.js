// loading.js: every way a page compiles a wasm module goes through here.
//
// For a Go module (it imports from `gojs`) the shim swaps in the probed bytes of probes.js and
// wraps the probe import, then links the instance to its probes; it also notes the module's URL
// for the daemon's `module` label (`instantiateStreaming` hands over the Response; bytes given to
// `instantiate` are traced back to the Response whose `arrayBuffer()` produced them). Anything
// that is not a Go module is passed to the original functions unchanged, and so is a Go module
// whose rewrite fails to compile: the page runs, uninstrumented.
//
// Hooked: WebAssembly.instantiateStreaming, instantiate (bytes or Module), compile,
// compileStreaming, and the Module and Instance constructors.

const urlOf = new $WeakMap(); // ArrayBuffer | WebAssembly.Module | WebAssembly.Instance -> URL

function remember(key, url) {
  if (key !== null && typeof key === "object" && typeof url === "string" && url !== "") {
    guard(() => urlOf.set(key, url));
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

function isGoImports(imports) {
  return guard(() => imports !== null && typeof imports === "object" && typeof imports.gojs === "object" &&
    imports.gojs !== null) === true;
}

// Bytes of a BufferSource, also one from another realm (an iframe's ArrayBuffer).
function asBytes(source) {
  if (guard(() => $toString.call(source)) === "[object ArrayBuffer]") {
    return new Uint8Array(source);
  }
  if (ArrayBuffer.isView(source)) {
    return new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  }
  return null;
}

function bufferURL(source) {
  return guard(() => urlOf.get(ArrayBuffer.isView(source) ? source.buffer : source));
}

function hookModuleLoading() {
  if (typeof WebAssembly !== "object" || WebAssembly === null) {
    missingHooks.add("WebAssembly");
    return;
  }
  const W = WebAssembly;
  const $instantiate = W.instantiate;
  const $compile = W.compile;
  const $Module = W.Module;
  const $Instance = W.Instance;

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

  // Compile probed bytes; if that fails, the original bytes (the page must run either way).
  // The probed module is written into the bytes' own buffer; compile() has copied it when it
  // returns, so the bytes are put back at once (the page may use them again).
  function compileGo(bytes, url) {
    const prepared = prepareGoModule(bytes, "inPlace");
    if (prepared === null) {
      return $apply($compile, W, [bytes]);
    }
    let compiling;
    try {
      compiling = $apply($compile, W, [prepared.bytes]);
    } finally {
      prepared.restore();
    }
    return compiling.then(
      (module) => noteModule(module, prepared.probes, url),
      () => $apply($compile, W, [bytes]).then((module) => noteModule(module, refused(), url)),
    );
  }

  function noteModule(module, probes, url) {
    probes.compiled = module;
    guard(() => probesOf.set(module, probes));
    remember(module, url);
    return module;
  }

  function refused() {
    modulesRefused++;
    return new ModuleProbes("unsupported", null, []);
  }

  function instantiateModule(module, imports) {
    const probes = guard(() => probesOf.get(module));
    if (probes === undefined || !isGoImports(imports)) {
      return $apply($instantiate, W, [module, imports]);
    }
    const ctx = new ProbeContext(probes);
    return $apply($instantiate, W, [module, withShimImports(imports, ctx)]).then((instance) =>
      linkInstance(instance, ctx, module));
  }

  function instantiateGoBytes(bytes, imports, url) {
    return compileGo(bytes, url).then((module) =>
      instantiateModule(module, imports).then((instance) => ({ module, instance })));
  }

  wrapFunction(W, "instantiateStreaming", "WebAssembly.instantiateStreaming", (original) =>
    function instantiateStreaming(source, imports) {
      if (!isGoImports(imports)) {
        return $apply(original, this, arguments); // not Go: untouched, still streamed
      }
      return Promise.resolve(source).then((response) => {
        const url = guard(() => response.url);
        return response.arrayBuffer().then((buf) => instantiateGoBytes(new Uint8Array(buf), imports, url));
      });
    });

  wrapFunction(W, "instantiate", "WebAssembly.instantiate", (original) =>
    function instantiate(source, imports) {
      if (source instanceof $Module) {
        return instantiateModule(source, imports);
      }
      const bytes = asBytes(source);
      if (bytes === null || !isGoImports(imports)) {
        return $apply(original, this, arguments);
      }
      return instantiateGoBytes(bytes, imports, bufferURL(source));
    });

  wrapFunction(W, "compile", "WebAssembly.compile", (original) =>
    function compile(source) {
      const bytes = asBytes(source);
      if (bytes === null) {
        return $apply(original, this, arguments);
      }
      return compileGo(bytes, bufferURL(source));
    });

  wrapFunction(W, "compileStreaming", "WebAssembly.compileStreaming", (original) =>
    function compileStreaming(source) {
      // Whether it is Go shows only in the bytes: read them (this gives up streaming compilation).
      return Promise.resolve(source).then((response) => {
        const url = guard(() => response.url);
        return response.arrayBuffer().then((buf) => compileGo(new Uint8Array(buf), url));
      });
    });

  // The synchronous constructors. The replacements share the originals' prototypes, so
  // `instanceof WebAssembly.Module/Instance` (which wasm_exec.js' run() checks) still holds.
  function Module(bytes) {
    if (!new.target) {
      return $apply($Module, this, arguments); // throws like the original
    }
    const source = asBytes(bytes);
    const prepared = source === null ? null : prepareGoModule(source, "inPlace");
    if (prepared === null) {
      return Reflect.construct($Module, arguments, new.target);
    }
    let module = null;
    let probes = prepared.probes;
    try {
      module = Reflect.construct($Module, [prepared.bytes], new.target);
    } catch (_) {
      probes = refused();
    } finally {
      prepared.restore();
    }
    if (module === null) {
      module = Reflect.construct($Module, [source], new.target);
    }
    return noteModule(module, probes, bufferURL(bytes));
  }

  function Instance(module, imports) {
    if (!new.target) {
      return $apply($Instance, this, arguments);
    }
    const probes = guard(() => probesOf.get(module));
    if (probes === undefined || !isGoImports(imports)) {
      return Reflect.construct($Instance, arguments, new.target);
    }
    const ctx = new ProbeContext(probes);
    const instance = Reflect.construct($Instance, [module, withShimImports(imports, ctx)], new.target);
    return linkInstance(instance, ctx, module);
  }

  function linkInstance(instance, ctx, module) {
    ctx.instance = instance;
    guard(() => contextOf.set(instance, ctx));
    remember(instance, urlOf.get(module));
    const exposed = guard(() => withObservedExports(instance, ctx)) || instance;
    if (exposed !== instance) {
      guard(() => contextOf.set(exposed, ctx));
      remember(exposed, urlOf.get(module));
    }
    return exposed;
  }

  for (const [name, replacement, original] of [["Module", Module, $Module], ["Instance", Instance, $Instance]]) {
    guard(() => {
      Object.setPrototypeOf(replacement, original);
      $defineProperty(replacement, "prototype", { value: original.prototype });
      $defineProperty(replacement, "name", { value: name });
      $defineProperty(replacement, "length", { value: original.length });
      $defineProperty(replacement, WRAPPED, { value: true });
      W[name] = replacement;
    });
    if (W[name] !== replacement) {
      missingHooks.add("WebAssembly." + name);
    }
  }
}

// Go's own exports; any other function export is a //go:wasmexport function (Go 1.24+).
const RUNTIME_EXPORTS = new Set(["run", "resume", "getsp", "_start", "_initialize", "go_scheduler"]);

// JS calls of //go:wasmexport functions go straight to the instance, past every Go-class hook:
// hand the page an Instance proxy whose `exports` has them wrapped (counted and timed like
// callbacks). `instance.exports` is frozen, so the proxy is the only way in; a proxy of an
// Instance still passes wasm_exec.js' `instanceof WebAssembly.Instance` check. Instances without
// such exports are returned as they are.
function withObservedExports(instance, ctx) {
  const original = instance.exports;
  const names = Object.keys(original).filter((name) =>
    typeof original[name] === "function" && !RUNTIME_EXPORTS.has(name));
  if (names.length === 0) {
    return instance;
  }
  const wrapped = {};
  for (const name of Object.keys(original)) {
    wrapped[name] = names.includes(name) ? observedExport(original[name], name, ctx) : original[name];
  }
  Object.freeze(wrapped);
  return new Proxy(instance, {
    get(target, prop) {
      return prop === "exports" ? wrapped : Reflect.get(target, prop, target);
    },
  });
}

function observedExport(fn, name, ctx) {
  const observed = function () {
    const rec = ctx.go === null ? undefined : recordByGo.get(ctx.go);
    if (rec === undefined) {
      return $apply(fn, this, arguments);
    }
    if (rec.exited) {
      rec.callsAfterExit++;
      guard(() => reportLateCall(rec, null, name));
      return $apply(fn, this, arguments);
    }
    rec.calls++;
    const entry = { rec, kind: "export", funcId: null, event: null, exportName: name };
    enter(entry);
    const token = rec.timing.begin();
    try {
      return $apply(fn, this, arguments);
    } finally {
      rec.timing.end(token);
      leave(entry);
    }
  };
  $defineProperty(observed, "name", { value: name });
  return observed;
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

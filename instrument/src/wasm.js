// wasm.js: a small reader/editor of the WebAssembly binary format, enough to put probes at the
// entry of named functions of a Go module before it is compiled.
//
// It reads the section list, the import section (function imports and their names), the
// function, global and export sections (counts), the name section's function names, and code
// bodies; it writes a module in which chosen bodies start with extra instructions, new mutable
// globals exist, and those globals are exported. Nothing else changes: no function, global or
// type index moves, so calls, the element segment and the name section stay valid. The module is
// written either into a new buffer or into the original one (writeInPlace, put back afterwards).
// Anything it does not expect makes it throw a WasmFormatError, and the caller then compiles the
// original bytes untouched.

class WasmFormatError extends Error {}

const SECTION = { custom: 0, type: 1, import: 2, function: 3, global: 6, export: 7, code: 10, data: 11 };
const EXTERNAL = { function: 0, table: 1, memory: 2, global: 3 };
const OP = {
  if: 0x04, end: 0x0b, call: 0x10, localGet: 0x20, globalGet: 0x23, globalSet: 0x24, i32Load: 0x28,
  i32Store: 0x36, i32Const: 0x41, i64Const: 0x42, i32Eqz: 0x45, i32Or: 0x72, i64Add: 0x7c,
}; // prettier-ignore
const TYPE = { i32: 0x7f, i64: 0x7e, func: 0x60, emptyBlock: 0x40 };
let utf8Decoder = null;

function utf8() {
  if (utf8Decoder === null) {
    const Decoder = textDecoderClass();
    utf8Decoder = Decoder !== null ? new Decoder("utf-8") : null;
  }
  return utf8Decoder;
}

class Reader {
  constructor(bytes, pos = 0, end = bytes.length) {
    this.bytes = bytes;
    this.pos = pos;
    this.end = end;
  }

  byte() {
    if (this.pos >= this.end) {
      throw new WasmFormatError("unexpected end of data");
    }
    return this.bytes[this.pos++];
  }

  // Unsigned LEB128, up to 32 bits (every count, index and size in a module).
  u32() {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.byte();
      result |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) {
        break;
      }
      shift += 7;
      if (shift > 28) {
        throw new WasmFormatError("LEB128 number too long");
      }
    }
    return result >>> 0;
  }

  skip(n) {
    if (n < 0 || this.pos + n > this.end) {
      throw new WasmFormatError("length past the end of its section");
    }
    this.pos += n;
  }

  name() {
    const len = this.u32();
    const start = this.pos;
    this.skip(len);
    let ascii = "";
    for (let i = start; i < start + len && ascii !== null; i++) {
      const c = this.bytes[i];
      ascii = c < 0x80 ? ascii + String.fromCharCode(c) : null; // import and section names: short, ASCII
    }
    if (ascii !== null) {
      return ascii;
    }
    const decoder = utf8();
    return decoder ? decoder.decode(this.bytes.subarray(start, start + len)) : "";
  }
}

// An unsigned LEB128 at bytes[pos], for the loops over thousands of entries that do not go
// through a Reader (findFunctions, skipBodies): the value; the position after it is left in
// `lebEnd` (no object per read).
let lebEnd = 0;

function lebAt(bytes, pos, end) {
  let value = 0;
  let shift = 0;
  let b;
  do {
    if (pos >= end || shift > 28) {
      throw new WasmFormatError("bad LEB128 number");
    }
    b = bytes[pos++];
    value |= (b & 0x7f) << shift;
    shift += 7;
  } while (b & 0x80);
  lebEnd = pos;
  return value >>> 0;
}

function encodeU32(value) {
  const out = [];
  let v = value >>> 0;
  do {
    let b = v & 0x7f;
    v >>>= 7;
    if (v !== 0) {
      b |= 0x80;
    }
    out.push(b);
  } while (v !== 0);
  return out;
}

// Signed LEB128 of a small non-negative number (i32.const operands).
function encodeS32(value) {
  const out = [];
  let v = value | 0;
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

function encodeName(text) {
  const bytes = Array.from(text, (c) => c.charCodeAt(0) & 0x7f); // ASCII names only
  return encodeU32(bytes.length).concat(bytes);
}

// The parts of a module the probes need. `bytes` must be a Uint8Array.
function parseModule(bytes) {
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new WasmFormatError("not a WebAssembly module");
  }
  if (bytes[4] !== 1 || bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) {
    throw new WasmFormatError("unknown WebAssembly version");
  }
  const module = {
    bytes,
    sections: [], // { id, start, end, headerStart } (start/end: the payload)
    importModules: new Set(),
    functionImports: [], // "module.field" by import index
    importedGlobals: 0,
    types: [], // { params: [...], results: [...] }
    functionSection: null, // read lazily (functionTypes): only a few entries are ever needed
    globalCount: 0,
    names: null, // FunctionNames of the name section (null: no function names)
  };
  const r = new Reader(bytes, 8);
  while (r.pos < r.end) {
    const headerStart = r.pos;
    const id = r.byte();
    const size = r.u32();
    const start = r.pos;
    r.skip(size);
    module.sections.push({ id, start, end: start + size, headerStart, name: null });
  }
  for (const section of module.sections) {
    const s = new Reader(bytes, section.start, section.end);
    switch (section.id) {
      case SECTION.type:
        readTypes(s, module);
        break;
      case SECTION.import:
        readImports(s, module);
        break;
      case SECTION.function:
        module.functionSection = section;
        break;
      case SECTION.global:
        module.globalCount = s.u32();
        break;
      case SECTION.custom:
        section.name = s.name();
        if (section.name === "name") {
          module.names = readFunctionNames(s, bytes);
        }
        break;
      default:
        break;
    }
  }
  return module;
}

function readTypes(r, module) {
  const count = r.u32();
  for (let i = 0; i < count; i++) {
    if (r.byte() !== TYPE.func) {
      throw new WasmFormatError("unexpected type form");
    }
    const params = [];
    for (let n = r.u32(); n > 0; n--) {
      params.push(r.byte());
    }
    const results = [];
    for (let n = r.u32(); n > 0; n--) {
      results.push(r.byte());
    }
    module.types.push({ params, results });
  }
}

function readImports(r, module) {
  const count = r.u32();
  for (let i = 0; i < count; i++) {
    const mod = r.name();
    const field = r.name();
    module.importModules.add(mod);
    const kind = r.byte();
    if (kind === EXTERNAL.function) {
      r.u32(); // type index
      module.functionImports.push(mod + "." + field);
    } else if (kind === EXTERNAL.table) {
      r.byte();
      skipLimits(r);
    } else if (kind === EXTERNAL.memory) {
      skipLimits(r);
    } else if (kind === EXTERNAL.global) {
      r.byte();
      r.byte();
      module.importedGlobals++;
    } else {
      throw new WasmFormatError("unknown import kind " + kind);
    }
  }
}

function skipLimits(r) {
  const flags = r.byte();
  r.u32();
  if (flags & 1) {
    r.u32();
  }
}

// The type index of each of the given functions (function indices, imports counted), by one
// pass over the function section up to the last one asked for: a Go module has tens of thousands
// of entries and the probes need six.
function functionTypes(module, indices) {
  const types = new Map();
  const section = module.functionSection;
  if (section === null) {
    return types;
  }
  const imported = module.functionImports.length;
  let last = -1;
  for (const index of indices) {
    last = Math.max(last, index - imported);
  }
  const r = new Reader(module.bytes, section.start, section.end);
  const count = r.u32();
  if (section.end - r.pos === count) {
    // Every entry is one byte (fewer than 128 types: any Go module): read the few asked for.
    for (const index of indices) {
      if (index - imported >= 0 && index - imported < count) {
        types.set(index, module.bytes[r.pos + index - imported]);
      }
    }
    return types;
  }
  for (let i = 0; i <= last && i < count; i++) {
    const type = r.u32();
    if (indices.has(imported + i)) {
      types.set(imported + i, type);
    }
  }
  return types;
}

// Subsection 1 of the "name" custom section: (function index, name) pairs, in increasing index
// order. Only its place is noted at load time: a Go module has tens of thousands of names, and a
// Map of them cost more than compiling a 10 MB module (measured in bench/module_load.py).
function readFunctionNames(r, bytes) {
  while (r.pos < r.end) {
    const id = r.byte();
    const size = r.u32();
    if (id === 1) {
      return new FunctionNames(bytes, r.pos, r.pos + size);
    }
    r.skip(size);
  }
  return null;
}

class FunctionNames {
  constructor(bytes, start, end) {
    this.bytes = bytes;
    this.start = start;
    this.end = end;
    this.index = null; // function index -> [start, length], built on the first lookup
  }

  // A copy that does not keep the module's bytes alive (only the names, a few hundred KB).
  detached() {
    return new FunctionNames(this.bytes.slice(this.start, this.end), 0, this.end - this.start);
  }

  // Calls fn(function index, start, length) for each name until it returns true.
  scan(fn) {
    const r = new Reader(this.bytes, this.start, this.end);
    for (let n = r.u32(); n > 0; n--) {
      const index = r.u32();
      const len = r.u32();
      const at = r.pos;
      r.skip(len);
      if (fn(index, at, len) === true) {
        return;
      }
    }
  }

  get(index) {
    if (this.index === null) {
      const map = new Map();
      this.scan((i, at, len) => {
        map.set(i, [at, len]);
      });
      this.index = map;
    }
    return this.index.get(index);
  }
}

function functionName(module, index) {
  const entry = module.names === null ? undefined : module.names.get(index);
  if (entry === undefined || utf8() === null) {
    return null;
  }
  return utf8().decode(module.names.bytes.subarray(entry[0], entry[0] + entry[1]));
}

// Function indices by name, for the few names asked for: one pass over the name section that
// compares bytes (the names are ASCII) and decodes nothing. It stops at the last name found, and
// reads the entries in one loop without a Reader (see warmup.js).
function findFunctions(module, wanted) {
  const found = new Map();
  if (module.names === null) {
    return found;
  }
  const byLength = []; // length -> [[name, bytes], ...], for the (short) lengths asked for
  for (const name of wanted) {
    if (name.length < 256) {
      const list = byLength[name.length] || (byLength[name.length] = []);
      list.push([name, Uint8Array.from(name, (c) => c.charCodeAt(0) & 0x7f)]);
    }
  }
  const { bytes, end } = module.names;
  const r = new Reader(bytes, module.names.start, end);
  let n = r.u32();
  let pos = r.pos;
  for (; n > 0 && found.size < wanted.size; n--) {
    let index = bytes[pos];
    if (index < 0x80) {
      pos += 1;
    } else {
      index = lebAt(bytes, pos, end);
      pos = lebEnd;
    }
    let len = bytes[pos];
    if (len < 0x80) {
      pos += 1;
    } else {
      len = lebAt(bytes, pos, end);
      pos = lebEnd;
    }
    if (pos + len > end) {
      throw new WasmFormatError("name past the end of the name section");
    }
    const candidates = len < 256 ? byLength[len] : undefined;
    if (candidates !== undefined) {
      for (const [name, expected] of candidates) {
        let i = 0;
        while (i < len && bytes[pos + i] === expected[i]) {
          i++;
        }
        if (i === len && !found.has(name)) {
          found.set(name, index >>> 0);
        }
      }
    }
    pos += len;
  }
  return found;
}

function sectionOf(module, id) {
  return module.sections.find((s) => s.id === id) || null;
}

// The lowest address an active data segment of memory 0 is written to (Infinity: none). Go's
// linker starts data at 12288 and keeps the first 4096 bytes as a zero page that Go code never
// touches (nil dereferences are checked); the site probe keeps its word there, only where this
// says so. A segment header of another shape (an offset that is not `i32.const`) throws.
function lowestDataAddress(module) {
  const section = sectionOf(module, SECTION.data);
  if (section === null) {
    return Infinity;
  }
  const r = new Reader(module.bytes, section.start, section.end);
  let lowest = Infinity;
  for (let n = r.u32(); n > 0; n--) {
    const flags = r.u32();
    if (flags === 0 || flags === 2) {
      const memory = flags === 2 ? r.u32() : 0;
      if (r.byte() !== OP.i32Const) {
        throw new WasmFormatError("data segment offset is not a constant");
      }
      const at = r.pos;
      const offset = r.u32(); // i32.const is signed: a set sign bit in its last byte is refused
      if ((r.bytes[r.pos - 1] & 0x40) !== 0 || r.byte() !== OP.end) {
        throw new WasmFormatError("data segment offset of an unexpected form at " + at);
      }
      if (memory === 0) {
        lowest = Math.min(lowest, offset);
      }
    } else if (flags !== 1) {
      throw new WasmFormatError("unknown data segment kind " + flags);
    }
    r.skip(r.u32());
  }
  return lowest;
}

// A new module: `prologues` maps function index -> bytes put at the start of its body;
// `globals` lists the mutable globals to add (zero-initialised), as [type, export name].
function rewriteModule(module, prologues, globals) {
  return concat(planModule(module, prologues, globals, false));
}

// The new module as a list of parts: views of the original bytes and small new arrays.
// `compact` (for writeInPlace) frees room at the front: it drops the "go:buildid" custom section
// and writes the headers of the sections up to the code section with minimal sizes (Go's linker
// writes every section size as a 5-byte LEB128).
function planModule(module, prologues, globals, compact) {
  const bytes = module.bytes;
  if (sectionOf(module, SECTION.code) === null || sectionOf(module, SECTION.global) === null ||
    sectionOf(module, SECTION.export) === null) {
    throw new WasmFormatError("module without code, global or export section");
  }
  const imported = module.functionImports.length;
  const parts = [bytes.subarray(0, 8)];
  let beforeCode = true;
  for (const section of module.sections) {
    if (section.id === SECTION.global && globals.length > 0) {
      parts.push(...sectionWith(section.id, appendGlobals(bytes, section, globals.map((g) => g[0]))));
    } else if (section.id === SECTION.export && globals.length > 0) {
      const first = module.importedGlobals + module.globalCount;
      parts.push(...sectionWith(section.id, appendExports(bytes, section, globals.map((g) => g[1]), first)));
    } else if (section.id === SECTION.code && prologues.size > 0) {
      parts.push(...sectionWith(section.id, rewriteBodies(bytes, section, prologues, imported)));
    } else if (compact && beforeCode && section.id === SECTION.custom && section.name === "go:buildid") {
      // dropped: nothing reads it at run time
    } else if (compact && beforeCode) {
      parts.push(...sectionWith(section.id, [bytes.subarray(section.start, section.end)]));
    } else {
      parts.push(bytes.subarray(section.headerStart, section.end));
    }
    if (section.id === SECTION.code) {
      beforeCode = false;
    }
  }
  return parts;
}

// Writes a planned module into the original bytes, right-aligned, without allocating a copy of
// it: a fresh 24 MB buffer costs a page fault per 4 KB page, more than all the shim's other
// load-time work (bench/module_load.py). Possible when the parts take no more room than the
// original: compact planning frees ~150 bytes at the front of a Go module (its build ID and the
// 5-byte section sizes) and the probes add ~130, so everything from the last changed function
// body on stays where it is and only the bytes before it move, by a few dozen bytes. Runs of
// original bytes are moved with copyWithin (memmove): those moving left first to last, then
// those moving right last to first, then the new bytes are written; a move that would overwrite
// bytes still to be moved makes it give up. Returns { bytes, restore } (restore() puts every
// original byte back, for a buffer the page owns), or null when the plan does not fit.
function writeInPlace(bytes, parts) {
  const buffer = bytes.buffer;
  const base = bytes.byteOffset;
  const items = [];
  let total = 0;
  let sourcesEnd = 0;
  for (const part of parts) {
    const len = part.length;
    const offset = part.byteOffset - base;
    const isSource = part.buffer === buffer && offset >= 0 && offset + len <= bytes.length;
    const last = items.length > 0 ? items[items.length - 1] : null;
    if (isSource && offset < sourcesEnd) {
      return null; // the plan reorders the original bytes
    }
    if (isSource && last !== null && last.src >= 0 && last.src + last.len === offset) {
      last.len += len; // a run of unchanged bytes
    } else {
      items.push({ src: isSource ? offset : -1, data: isSource ? null : part, len, dest: 0 });
    }
    if (isSource) {
      sourcesEnd = offset + len;
    }
    total += len;
  }
  if (total > bytes.length) {
    return null;
  }
  const start = bytes.length - total;
  let at = start;
  for (const item of items) {
    item.dest = at;
    at += item.len;
  }
  const moves = items.filter((item) => item.src >= 0 && item.dest !== item.src);
  const left = moves.filter((item) => item.dest < item.src);
  const right = moves.filter((item) => item.dest > item.src).reverse();
  for (const l of left) {
    for (const r of right) {
      if (l.dest < r.src + r.len && r.src < l.dest + l.len) {
        return null; // l would land on r's bytes before they moved
      }
    }
  }
  // What no part keeps (the build ID, old section headers) is saved for restore().
  const gaps = [];
  let covered = 0;
  for (const item of items) {
    if (item.src >= 0) {
      if (item.src > covered) {
        gaps.push([covered, bytes.slice(covered, item.src)]);
      }
      covered = item.src + item.len;
    }
  }
  if (covered < bytes.length) {
    gaps.push([covered, bytes.slice(covered, bytes.length)]);
  }
  for (const item of left.concat(right)) {
    bytes.copyWithin(item.dest, item.src, item.src + item.len);
  }
  for (const item of items) {
    if (item.src < 0) {
      bytes.set(item.data, item.dest);
    }
  }
  return {
    bytes: bytes.subarray(start),
    restore() {
      // The inverse: what moved right goes back first to last, what moved left last to first.
      for (const item of right.slice().reverse().concat(left.slice().reverse())) {
        bytes.copyWithin(item.src, item.dest, item.dest + item.len);
      }
      for (const [offset, saved] of gaps) {
        bytes.set(saved, offset);
      }
    },
  };
}

function sectionWith(id, payloadParts) {
  let size = 0;
  for (const p of payloadParts) {
    size += p.length;
  }
  return [Uint8Array.of(id, ...encodeU32(size)), ...payloadParts];
}

function appendGlobals(bytes, section, types) {
  const r = new Reader(bytes, section.start, section.end);
  const count = r.u32();
  const extra = [];
  for (const type of types) {
    extra.push(type, 1, type === TYPE.i64 ? OP.i64Const : OP.i32Const, 0, OP.end); // (mut t) (t.const 0)
  }
  return [Uint8Array.from(encodeU32(count + types.length)), bytes.subarray(r.pos, section.end), Uint8Array.from(extra)];
}

function appendExports(bytes, section, names, firstGlobal) {
  const r = new Reader(bytes, section.start, section.end);
  const count = r.u32();
  const extra = [];
  names.forEach((name, i) => {
    extra.push(...encodeName(name), EXTERNAL.global, ...encodeU32(firstGlobal + i));
  });
  return [Uint8Array.from(encodeU32(count + names.length)), bytes.subarray(r.pos, section.end), Uint8Array.from(extra)];
}

function rewriteBodies(bytes, section, prologues, imported) {
  const r = new Reader(bytes, section.start, section.end);
  const count = r.u32();
  const parts = [Uint8Array.from(encodeU32(count))];
  let copyFrom = r.pos; // unchanged bodies are copied in runs
  let pos = r.pos;
  let i = 0;
  for (const index of Array.from(prologues.keys()).sort((x, y) => x - y)) {
    const target = index - imported;
    if (target < i || target >= count) {
      throw new WasmFormatError("no body for function " + index);
    }
    pos = skipBodies(bytes, pos, section.end, target - i);
    const prologue = prologues.get(index);
    const bodyHeader = pos;
    const header = new Reader(bytes, pos, section.end);
    const size = header.u32();
    const bodyStart = header.pos;
    const bodyEnd = bodyStart + size;
    const locals = new Reader(bytes, bodyStart, bodyEnd);
    for (let n = locals.u32(); n > 0; n--) {
      locals.u32();
      locals.byte();
    }
    parts.push(bytes.subarray(copyFrom, bodyHeader));
    parts.push(Uint8Array.from(encodeU32(size + prologue.length)));
    parts.push(bytes.subarray(bodyStart, locals.pos), prologue, bytes.subarray(locals.pos, bodyEnd));
    copyFrom = bodyEnd;
    pos = bodyEnd;
    i = target + 1;
  }
  parts.push(bytes.subarray(copyFrom, section.end));
  return parts;
}

// The position `n` function bodies after `pos`: one tight loop, without a Reader, because it runs
// over thousands of bodies (see warmup.js).
function skipBodies(bytes, pos, end, n) {
  for (; n > 0 && pos < end; n--) {
    const b0 = bytes[pos];
    const b1 = bytes[pos + 1];
    if (b0 < 0x80) {
      pos += 1 + b0;
    } else if (b1 < 0x80) {
      pos += 2 + ((b0 & 0x7f) | (b1 << 7)); // most bodies: 128 B .. 16 KB
    } else {
      const size = lebAt(bytes, pos, end);
      pos = lebEnd + size;
    }
  }
  if (n > 0) {
    throw new WasmFormatError("fewer function bodies than functions");
  }
  if (pos > end) {
    throw new WasmFormatError("function body past the end of the code section");
  }
  return pos;
}

function concat(parts) {
  let total = 0;
  for (const p of parts) {
    total += p.length;
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

// Go's wasm functions take one i32 (PC_B, the resume point: 0 on a normal entry) and return one
// i32; code at their entry must run only when PC_B is 0, or it would run again on every resume.
// `typeIndex` comes from functionTypes().
function isGoFunction(module, typeIndex) {
  if (typeIndex === undefined) {
    return false;
  }
  const type = module.types[typeIndex];
  return type !== undefined && type.params.length === 1 && type.params[0] === TYPE.i32 &&
    type.results.length === 1 && type.results[0] === TYPE.i32;
}

// `if (PC_B == 0) { call $import((SP | tag)) }`: global 0 is Go's stack pointer, 8-aligned, so
// the low bits carry which probe fired. The import is Go's own resetMemoryDataView, wrapped.
function callProbe(tag, importIndex) {
  return Uint8Array.of(
    OP.localGet, 0, OP.i32Eqz, OP.if, TYPE.emptyBlock,
    OP.globalGet, 0, OP.i32Const, ...encodeS32(tag), OP.i32Or, OP.call, ...encodeU32(importIndex),
    OP.end,
  ); // prettier-ignore
}

// `if (PC_B == 0) { mem[address] = i32.load(SP) }`: the low word of the return address at the top
// of Go's stack (global 0), a PC in the calling function, kept in a word of Go's zero page (see
// lowestDataAddress), where JS reads it through a DataView: a WebAssembly.Global's `value` getter
// costs ~13 ns a read in Chromium 156, a DataView read well under 1 ns.
function siteProbe(address) {
  return Uint8Array.of(
    OP.localGet, 0, OP.i32Eqz, OP.if, TYPE.emptyBlock,
    OP.i32Const, 0, OP.globalGet, 0, OP.i32Load, 2, 0, OP.i32Store, 2, ...encodeU32(address),
    OP.end,
  ); // prettier-ignore
}

// `if (PC_B == 0) { counter += 1 }` on a new exported global: no call out of wasm.
function countProbe(globalIndex) {
  const g = encodeU32(globalIndex);
  return Uint8Array.of(
    OP.localGet, 0, OP.i32Eqz, OP.if, TYPE.emptyBlock,
    OP.globalGet, ...g, OP.i64Const, 1, OP.i64Add, OP.globalSet, ...g,
    OP.end,
  ); // prettier-ignore
}

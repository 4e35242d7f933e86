"""Session-wide real parts: Go toolchains from PyPI, the test apps compiled with each, a static
site serving them with each toolchain's own wasm_exec.js, and one headless Chromium."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gowasm_demo.server import StaticSite, serve
from gowasm_demo.toolchain import GoToolchain, ensure_go
from gowasm_exporter.launcher import find_chrome, launch_chrome
from support import CDPClient

APPS = Path(__file__).parent / "apps"
GO_VERSIONS = os.environ.get("GOWASM_TEST_GO_VERSIONS", "1.21.13 1.27.3").split()


@dataclass(frozen=True)
class GoApp:
    """A test app built with one toolchain and served at ``url``."""

    go: GoToolchain
    name: str
    url: str  # the page
    module_path: str  # URL path of its wasm module
    wasm: Path


@pytest.fixture(scope="session")
def toolchains() -> list[GoToolchain]:
    return [ensure_go(v) for v in GO_VERSIONS]


@pytest.fixture(scope="session")
def site(toolchains: list[GoToolchain], tmp_path_factory: pytest.TempPathFactory) -> Iterator[StaticSite]:
    """Every test app, built with every toolchain: /go<version>/<app>/{index.html,main.wasm}."""
    out = tmp_path_factory.mktemp("site")
    site = StaticSite({})
    for go in toolchains:
        site.add(f"/go{go.version}/wasm_exec.js", go.wasm_exec_js)
        for app in sorted(p for p in APPS.iterdir() if (p / "main.go").is_file()):
            wasm = go.build_wasm(app, out / f"go{go.version}" / app.name / "main.wasm")
            site.add(f"/go{go.version}/{app.name}/main.wasm", wasm)
            site.add(f"/go{go.version}/{app.name}/index.html", app / "index.html")
            if app.name == "releases":  # the same app built without its name section
                stripped = go.build_wasm(
                    app, out / f"go{go.version}" / "releases-stripped" / "main.wasm", ldflags="-s -w"
                )
                site.add(f"/go{go.version}/releases-stripped/main.wasm", stripped)
                site.add(f"/go{go.version}/releases-stripped/index.html", app / "index.html")
        # pages (and their scripts) that combine several apps or run them in other contexts
        for page in sorted([*APPS.glob("*.html"), *APPS.glob("*.js")]):
            site.add(f"/go{go.version}/{page.name}", page)
    with serve(site) as served:
        yield served


def app_for(site: StaticSite, go: GoToolchain, name: str) -> GoApp:
    prefix = f"/go{go.version}/{name}"
    return GoApp(
        go, name, f"{site.base_url}{prefix}/index.html", f"{prefix}/main.wasm", site.routes[f"{prefix}/main.wasm"]
    )


@pytest.fixture(scope="session")
async def chrome() -> AsyncIterator[str]:
    """One headless Chromium for the whole session; its DevTools HTTP endpoint."""
    async with launch_chrome(find_chrome(os.environ.get("GOWASM_TEST_CHROME"))) as endpoint:
        yield endpoint


@pytest.fixture
async def client(chrome: str) -> AsyncIterator[CDPClient]:
    """A CDP client of the test's own: "another client" opening and driving pages."""
    c = await CDPClient.connect(chrome)
    try:
        yield c
    finally:
        await c.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "go_version" in metafunc.fixturenames:
        metafunc.parametrize("go_version", GO_VERSIONS)


@pytest.fixture
def go(go_version: str, toolchains: list[GoToolchain]) -> GoToolchain:
    return next(t for t in toolchains if t.version == go_version)

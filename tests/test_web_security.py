"""The HTTP side's security: the API token guard, and what stays open without it."""

from __future__ import annotations

import httpx
import pytest
from starlette.routing import Route

from gowasm_exporter.cli import build_registry
from gowasm_exporter.state import ExporterState
from gowasm_exporter.web import create_app
from support import free_port, run_exporter

TOKEN = "s3cret-token-0123456789"


def client(token: str | None) -> httpx.AsyncClient:
    state = ExporterState()
    state.browser_connected("b", None)
    app = create_app(state, build_registry(state), api_token=token)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://exporter")


@pytest.mark.parametrize("path", ["/api/targets", "/api/panics", "/api/leaks", "/api/not-yet-written", "/docs"])
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ],
)
async def test_with_a_token_every_other_path_needs_it(path: str, headers: dict[str, str]) -> None:
    """Missing, wrong, longer, or non-Bearer credentials get 401 on every path outside the open ones."""
    async with client(TOKEN) as http:
        response = await http.get(path, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert TOKEN not in response.text


@pytest.mark.parametrize("path", ["/api/targets", "/api/panics", "/api/leaks"])
async def test_the_right_bearer_token_opens_the_api(path: str) -> None:
    """The exact token, after 'Bearer' (any case), is let through."""
    async with client(TOKEN) as http:
        assert (await http.get(path, headers={"Authorization": f"Bearer {TOKEN}"})).status_code == 200
        assert (await http.get(path, headers={"Authorization": f"bearer {TOKEN}"})).status_code == 200


@pytest.mark.parametrize("path", ["/metrics", "/healthz", "/"])
async def test_metrics_healthz_and_the_static_status_page_stay_open(path: str) -> None:
    """Scrapers and probes carry no credentials: /metrics, /healthz and the page shell stay open."""
    async with client(TOKEN) as http:
        assert (await http.get(path)).status_code == 200


async def test_without_a_token_the_api_is_open() -> None:
    """No token configured: nothing asks for one (the default, listening on 127.0.0.1 only)."""
    async with client(None) as http:
        assert (await http.get("/api/targets")).status_code == 200


def test_every_route_is_a_read_only_get() -> None:
    """No endpoint takes a body, changes state, evaluates code in a page or proxies CDP: all are
    GETs over the exporter's memory (a new method here is a security review, not a refactor)."""
    state = ExporterState()
    app = create_app(state, build_registry(state))
    routes = {route.path: route.methods for route in app.routes if isinstance(route, Route)}
    assert routes and all(methods <= {"GET", "HEAD"} for methods in routes.values()), routes
    assert not any("cdp" in path or "devtools" in path or "eval" in path for path in routes)


async def test_the_token_comes_from_the_environment_of_the_running_exporter() -> None:
    """GOWASM_EXPORTER_API_TOKEN reaches the running daemon: /api needs it, /metrics does not."""
    endpoint = f"http://127.0.0.1:{free_port()}"  # no browser: the HTTP side works alone
    async with run_exporter("--cdp", endpoint, env={"GOWASM_EXPORTER_API_TOKEN": TOKEN}) as exporter:
        assert (await exporter.http.get("/api/targets")).status_code == 401
        authorized = await exporter.http.get("/api/targets", headers={"Authorization": f"Bearer {TOKEN}"})
        assert authorized.status_code == 200
        assert (await exporter.http.get("/metrics")).status_code == 200
        assert TOKEN not in "\n".join(exporter.log_lines)
        assert await exporter.stop() == 0

"""The HTTP side: ``/metrics``, ``/healthz``, the JSON API and a landing page.

Handlers read the state; none of them talks to a browser, evaluates code in a page or proxies
CDP. They are all ``async def``, so they run on the event loop that also changes the state: a
plain ``def`` would run in a worker thread and could see the state mid-change. ``/metrics`` is an
explicit route (mounting client_python's ASGI app answers with a 307 redirect,
prometheus/client_python#1016). Everything page-controlled that reaches HTML is escaped.

With an API token (``--api-token``), every path but ``/metrics``, ``/healthz`` and the static
status page shell requires ``Authorization: Bearer <token>`` (an allow-list, so an endpoint added
later is closed by default). ``/metrics`` stays open because Prometheus and the operations bundle
scrape it like any exporter (it carries counts and normalised labels, no panic text or traces);
``/healthz`` because probes carry no credentials (it says only whether each browser is up).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from fastapi import FastAPI, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.types import ASGIApp, Receive, Scope, Send

from .state import ExporterState, InstanceEnd, InstanceState, TargetState
from .status import STATUS_PAGE

MAX_PANICS_PER_RESPONSE = 500
# Paths served without the API token. "/" is a static shell that holds no page-controlled byte:
# the data it shows comes from /api/*, which the token guards.
OPEN_PATHS = frozenset({"/metrics", "/healthz", "/"})


class BearerTokenGuard:
    """ASGI middleware: every path outside ``OPEN_PATHS`` needs ``Authorization: Bearer <token>``.

    The comparison is constant-time (``hmac.compare_digest``) over SHA-256 digests, so neither
    the token's characters nor its length can be learnt from response times.
    """

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._digest = hashlib.sha256(token.encode()).digest()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        response = JSONResponse(
            {"error": "this endpoint needs Authorization: Bearer <api token>"},
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="gowasm-exporter"'},
        )
        await response(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, credentials = bytes(value).partition(b" ")
                given = hashlib.sha256(credentials.strip()).digest()
                return scheme.lower() == b"bearer" and hmac.compare_digest(given, self._digest)
        return False


def create_app(
    state: ExporterState,
    registry: CollectorRegistry,
    *,
    api_token: str | None = None,
    on_scrape: Callable[[], None] | None = None,
) -> FastAPI:
    """The HTTP app; ``on_scrape`` is told of every ``/metrics`` request (the scrape pacer)."""
    app = FastAPI(title="gowasm-exporter", docs_url=None, redoc_url=None, openapi_url=None)
    if api_token:
        app.add_middleware(BearerTokenGuard, token=api_token)

    @app.get("/metrics")
    async def metrics() -> Response:
        if on_scrape is not None:
            on_scrape()
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "browsers": {name: b.up for name, b in state.browsers.items()},
        }

    @app.get("/api/targets")
    async def targets() -> dict[str, Any]:
        return {"browsers": [_browser_json(state, name) for name in sorted(state.browsers)]}

    @app.get("/api/panics")
    async def panics(
        page: str | None = None,
        kind: str | None = Query(None, description="comma-separated: panic, fatal, exit, unload, crash"),
        limit: int = Query(100, ge=1, le=MAX_PANICS_PER_RESPONSE),
    ) -> JSONResponse:
        kinds = None if kind is None else {k.strip() for k in kind.split(",")}
        records = [
            _end_json(end)
            for end in state.ends
            if (page is None or end.page == page) and (kinds is None or end.kind in kinds)
        ][:limit]
        return JSONResponse({"panics": records})

    @app.get("/api/leaks")
    async def leaks(page: str | None = None, limit: int = Query(50, ge=1, le=1000)) -> dict[str, Any]:
        return {"leaks": leak_sites(state, page)[:limit]}

    @app.get("/", response_class=HTMLResponse)
    async def landing() -> str:
        return STATUS_PAGE

    return app


def _browser_json(state: ExporterState, name: str) -> dict[str, Any]:
    browser = state.browsers[name]
    return {
        "name": name,
        "up": browser.up,
        "version": browser.version,
        "targets": [_target_json(state, t) for t in state.watched_targets(browser)],
    }


def _target_json(state: ExporterState, target: TargetState) -> dict[str, Any]:
    return {
        "target_id": target.target_id,
        "type": target.type,
        "parent": target.parent,
        "url": target.url,
        "page": state.page_label_of(target),
        "attach": target.attach,
        "missing_hooks": list(target.missing_hooks),
        "shim_errors": target.shim_errors,
        "shim_events_failed": target.shim_events_failed,
        "polls": target.polls,
        "metrics": asdict(target.metrics),
        "instances": [_instance_json(i) for i in target.instances.values()],
    }


def _instance_json(instance: InstanceState) -> dict[str, Any]:
    return {
        "iid": instance.iid,
        "doc": instance.doc,
        "page": instance.page,
        "module": instance.module,
        "module_url": instance.module_url,
        "instrumented": instance.mode,
        "running": instance.running,
        "exit_code": instance.exit_code,
        "funcs_created": instance.funcs_created,
        "funcs_released": instance.funcs_released if instance.accounting == "exact" else None,
        "funcs_live": instance.funcs_live,
        "release_accounting": instance.accounting,
        "flavour": instance.flavour,
        "calls_after_release": instance.calls_after_release,
        "goroutines": instance.goroutines,
        "gc_cycles": instance.gc_cycles,
        "recovered_panics": instance.recovered_panics,
        "func_calls": instance.func_calls,
        "calls_after_exit": instance.calls_after_exit,
        "js_refs_live": instance.refs,
        "memory_bytes": instance.memory_bytes,
        "age_seconds": round(time.time() - instance.first_seen, 3),
        "history": {
            "t": [round(h[0], 3) for h in instance.history],
            "funcs": [h[1] for h in instance.history],
            "refs": [h[2] for h in instance.history],
            "memory": [h[3] for h in instance.history],
        },
    }


def leak_sites(state: ExporterState, page: str | None = None) -> list[dict[str, Any]]:
    """Live funcs by creation site over running instances, most first (stdlib churn included)."""
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for instance in state.running_instances():
        if page is not None and instance.page != page:
            continue
        for site in instance.sites:
            row = rows.setdefault(
                (instance.page, instance.module, site.site),
                {"page": instance.page, "module": instance.module, "site": site.site, "live": 0, "created": 0,
                 "released": 0, "oldest_age_seconds": None},
            )  # fmt: skip
            row["live"] += site.live
            row["created"] += site.created
            row["released"] += site.released
            if site.oldest_age_seconds is not None:
                row["oldest_age_seconds"] = max(row["oldest_age_seconds"] or 0.0, site.oldest_age_seconds)
    return sorted(rows.values(), key=lambda r: (-r["live"], r["site"]))


def _end_json(end: InstanceEnd) -> dict[str, Any]:
    record = asdict(end)
    record["late_calls"] = [asdict(call) for call in end.late_calls]
    return record

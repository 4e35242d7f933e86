"""The operations bundle against the real thing: a real Prometheus (Debian's package) scraping the
exporter while it watches real Go WASM pages, with the bundle's rules loaded; every dashboard
panel's query must parse and return data, and a real scrape must pass ``promtool check metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import yaml

from conftest import app_for
from support import CDPClient, Exporter, PageError, free_port, run_exporter
from test_ops_grafana import panel_queries

REPO = Path(__file__).resolve().parents[1]
PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")

pytestmark = pytest.mark.skipif(
    PROMETHEUS is None or PROMTOOL is None, reason="needs Debian's prometheus package (scripts/bootstrap installs it)"
)


@contextlib.asynccontextmanager
async def run_prometheus(target: str, tmp: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A real Prometheus scraping ``target`` every second, with the bundle's rules."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(REPO / "prometheus" / "rules" / "*.yml")],
        "scrape_configs": [{"job_name": "gowasm-exporter", "static_configs": [{"targets": [target]}]}],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        PROMETHEUS,  # type: ignore[arg-type]
        f"--config.file={tmp / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    api = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        yield api
    finally:
        await api.aclose()
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)


async def query(api: httpx.AsyncClient, expr: str) -> dict[str, Any]:
    response = await api.get("/api/v1/query", params={"query": expr})
    return response.json()


async def until(api: httpx.AsyncClient, expr: str, timeout: float = 60) -> None:
    """Wait until ``expr`` has a result (Prometheus offers no event for "scraped")."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            answer = await query(api, expr)
            if answer.get("status") == "success" and answer["data"]["result"]:
                return
        await asyncio.sleep(0.25)
    raise AssertionError(f"Prometheus never returned data for {expr}")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def watched(chrome: str, site, toolchains) -> AsyncIterator[Exporter]:
    """The exporter watching a releases page (exact accounting, leaks) and an ended endings page."""
    go = toolchains[-1]
    client = await CDPClient.connect(chrome)
    async with run_exporter("--cdp", chrome, "--poll-interval", "0.5") as exporter:
        await exporter.wait_for_log("connected")
        releases = await client.open_page(app_for(site, go, "releases").url)
        await releases.evaluate("window.releasesReady", await_promise=True)
        await releases.evaluate("releases.patterns(); releases.leak(20); releases.exportReleased(); releasedFunc()")
        await releases.evaluate("releases.startGoroutines(3); releases.recoverPanics(2); releases.gc(1)")
        ended = await client.open_page(app_for(site, go, "endings").url)
        await ended.evaluate("window.endingsReady", await_promise=True)
        await ended.evaluate("endings.busy(60); endings.panicValue('for the dashboards')")
        with contextlib.suppress(PageError):
            await ended.evaluate("endings.noop()")
        await exporter.settled(releases.target_id)
        yield exporter
        await releases.close()
        await ended.close()
    await client.close()


async def test_every_panel_query_returns_data(watched: Exporter, tmp_path: Path) -> None:
    """Each query of both dashboards parses and returns at least one series from real data."""
    target = watched.base.removeprefix("http://")
    async with run_prometheus(target, tmp_path) as api:
        # rate() and deriv() need two samples of every series: wait for the third scrape.
        await until(api, 'count_over_time(up{job="gowasm-exporter"}[1m]) >= 3')
        await until(api, "count_over_time(gowasm_funcs_live[1m]) >= 3")
        empty = []
        for where, expr in panel_queries():
            answer = await query(api, expr)
            assert answer.get("status") == "success", f"{where}: {expr}: {answer}"
            if not answer["data"]["result"]:
                empty.append(f"{where}: {expr}")
        assert empty == []
        rules = (await api.get("/api/v1/rules")).json()
        assert rules["status"] == "success"
        assert all(group["rules"] for group in rules["data"]["groups"])
        assert all(r.get("health") != "err" for g in rules["data"]["groups"] for r in g["rules"])


async def test_a_real_scrape_passes_promtool_check_metrics(watched: Exporter) -> None:
    """promtool's linter accepts the exposition of an exporter watching real pages."""
    text = (await watched.http.get("/metrics")).text
    assert "gowasm_funcs_live{" in text and "gowasm_func_call_duration_seconds_bucket{" in text
    check = await asyncio.create_subprocess_exec(
        PROMTOOL,  # type: ignore[arg-type]
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await check.communicate(text.encode())
    assert check.returncode == 0, output.decode()
    assert output.decode().strip() == "", output.decode()

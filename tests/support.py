"""Test helpers: a CDP client acting as "another client", and the exporter run as a user runs it.

The exporter runs as a real subprocess (``python -m gowasm_exporter``); tests read it only
through its HTTP endpoints, as Prometheus and users do.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from gowasm_exporter.cdp import Connection, Event, Session

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WAIT = 20.0


class Page:
    """A page opened by the test's own CDP client (not the exporter's)."""

    def __init__(self, client: CDPClient, target_id: str, session: Session) -> None:
        self.client = client
        self.target_id = target_id
        self.session = session

    async def evaluate(self, expression: str, *, await_promise: bool = False) -> Any:
        answer = await self.session.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": await_promise},
            timeout=30,
        )
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise PageError(text)
        return answer.get("result", {}).get("value")

    async def wait_loaded(self, url: str) -> None:
        """Wait until the tab shows ``url`` with its load event fired."""
        loaded = self.client.expect(
            lambda e: e.method == "Page.loadEventFired" and e.session_id == self.session.session_id
        )
        try:
            await self.session.send("Page.enable")
            state = await self.evaluate("[location.href, document.readyState]")
            if state != [url, "complete"]:
                await asyncio.wait_for(loaded, DEFAULT_WAIT)
        finally:
            loaded.cancel()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.connection.send("Target.closeTarget", {"targetId": self.target_id})


class PageError(Exception):
    """A script evaluated by the test threw."""


class CDPClient:
    def __init__(self) -> None:
        self.connection: Connection
        self._waiters: list[tuple[Callable[[Event], bool], asyncio.Future[Event]]] = []

    @classmethod
    async def connect(cls, endpoint: str) -> CDPClient:
        from gowasm_exporter.browser import resolve_websocket_url

        ws_url, _ = await asyncio.to_thread(resolve_websocket_url, endpoint)
        client = cls()
        client.connection = await Connection.open(ws_url, client._on_event)
        return client

    def _on_event(self, event: Event) -> None:
        for predicate, future in self._waiters:
            if not future.done() and predicate(event):
                future.set_result(event)

    def expect(self, predicate: Callable[[Event], bool]) -> asyncio.Future[Event]:
        """A future for the next event matching ``predicate`` (register it before causing it)."""
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        entry = (predicate, future)
        self._waiters.append(entry)
        future.add_done_callback(lambda _: self._waiters.remove(entry))
        return future

    async def open_page(self, url: str) -> Page:
        """Open a tab on ``url`` (as any client would), attach to it, and wait for its load."""
        created = await self.connection.send("Target.createTarget", {"url": url})
        target_id = created["targetId"]
        attached = await self.connection.send("Target.attachToTarget", {"targetId": target_id, "flatten": True})
        page = Page(self, target_id, self.connection.session(attached["sessionId"]))
        await page.wait_loaded(url)
        return page

    async def close(self) -> None:
        await self.connection.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Metrics:
    """One scrape of ``/metrics``, parsed by client_python's own parser."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def get(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, frozenset(labels.items())))

    def names(self) -> set[str]:
        return {name for name, _ in self.samples}


class Exporter:
    """``python -m gowasm_exporter`` in a subprocess, read through HTTP."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int) -> None:
        self.proc = proc
        self.base = f"http://127.0.0.1:{port}"
        self.http = httpx.AsyncClient(base_url=self.base, timeout=10)
        self.log_lines: list[str] = []
        self._line_waiters: list[tuple[Callable[[str], bool], asyncio.Future[str]]] = []
        self._reader = asyncio.create_task(self._read_log())

    async def _read_log(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            self.log_lines.append(line)
            for predicate, future in list(self._line_waiters):
                if not future.done() and predicate(line):
                    future.set_result(line)

    async def wait_for_log(self, needle: str, timeout: float = DEFAULT_WAIT, *, count: int = 1) -> str:
        """Wait until ``count`` log lines contain ``needle`` (lines already written count)."""
        seen = [line for line in self.log_lines if needle in line]
        if len(seen) >= count:
            return seen[count - 1]
        remaining = count - len(seen)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def predicate(line: str) -> bool:
            nonlocal remaining
            if needle in line:
                remaining -= 1
            return remaining == 0

        entry = (predicate, future)
        self._line_waiters.append(entry)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise AssertionError(f"no log line with {needle!r}; log:\n" + "\n".join(self.log_lines)) from None
        finally:
            self._line_waiters.remove(entry)

    async def wait_for_instance(
        self, page_url: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = DEFAULT_WAIT
    ) -> dict[str, Any]:
        """Re-read ``/api/targets`` until an instance of the page at ``page_url`` satisfies ``predicate``."""
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            for browser in (await self.json("/api/targets"))["browsers"]:
                for target in browser["targets"]:
                    for instance in target["instances"]:
                        if target["url"] == page_url and predicate(instance):
                            return instance
            await asyncio.sleep(0.05)
        raise AssertionError(f"no instance of {page_url} matched; log:\n" + "\n".join(self.log_lines[-40:]))

    async def metrics(self) -> Metrics:
        response = await self.http.get("/metrics")
        response.raise_for_status()
        return Metrics(response.text)

    async def json(self, path: str) -> Any:
        response = await self.http.get(path)
        response.raise_for_status()
        return response.json()

    async def target(self, target_id: str) -> dict[str, Any] | None:
        for browser in (await self.json("/api/targets"))["browsers"]:
            for target in browser["targets"]:
                if target["target_id"] == target_id:
                    return target
        return None

    async def wait_for_target(
        self, target_id: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = DEFAULT_WAIT
    ) -> dict[str, Any]:
        """Re-read ``/api/targets`` until the target satisfies ``predicate``."""
        deadline = asyncio.get_running_loop().time() + timeout
        last: dict[str, Any] | None = None
        while asyncio.get_running_loop().time() < deadline:
            last = await self.target(target_id)
            if last is not None and predicate(last):
                return last
            await asyncio.sleep(0.05)
        raise AssertionError(
            f"target {target_id} never matched; last seen: {json.dumps(last, indent=1)}\nexporter log:\n"
            + "\n".join(self.log_lines[-40:])
        )

    async def settled(self, target_id: str, polls: int = 2) -> dict[str, Any]:
        """Wait until the exporter polled the target ``polls`` more times: its state has caught up."""
        start = (await self.wait_for_target(target_id, lambda t: True))["polls"]
        return await self.wait_for_target(target_id, lambda t: t["polls"] >= start + polls)

    async def stop(self) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.proc.wait(), 15)
        await self._reader
        await self.http.aclose()
        return code


@contextlib.asynccontextmanager
async def run_exporter(*args: str, env: dict[str, str] | None = None) -> AsyncIterator[Exporter]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gowasm_exporter",
        "--listen",
        f"127.0.0.1:{port}",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO / "daemon"), **(env or {})},
    )
    exporter = Exporter(proc, port)
    try:
        await exporter.wait_for_log("serving http://")
        yield exporter
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        with contextlib.suppress(Exception):
            await exporter.http.aclose()

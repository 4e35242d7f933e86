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
# The exporter's log lines can be long (an instance end carries the head of its trace); a line
# over asyncio's 64 KiB default would stop the log reader and, with the pipe full, the exporter.
LOG_LINE_LIMIT = 16 * 1024 * 1024


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
        try:
            code = await asyncio.wait_for(asyncio.shield(self.proc.wait()), 15)
        except TimeoutError:
            # Ask it what it waits for (the daemon dumps its tasks on SIGUSR1), then end it.
            self.proc.send_signal(signal.SIGUSR1)
            await asyncio.sleep(1)
            self.proc.kill()
            await self.proc.wait()
            await self._reader
            raise AssertionError(
                "the exporter did not stop within 15 s of SIGTERM; its log:\n" + "\n".join(self.log_lines[-80:])
            ) from None
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
        limit=LOG_LINE_LIMIT,
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


# -- fault injection and resource measurement (issue 5) -------------------------------------------


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (``VmRSS`` in ``/proc/<pid>/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


async def wait_for_metric(
    exporter: Exporter, predicate: Callable[[Metrics], bool], timeout: float = DEFAULT_WAIT
) -> Metrics:
    """Scrape ``/metrics`` until ``predicate`` holds (for states no log line or CDP event announces)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        metrics = await exporter.metrics()
        if predicate(metrics):
            return metrics
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("/metrics never matched; log:\n" + "\n".join(exporter.log_lines[-40:]))
        await asyncio.sleep(0.05)


class RestartableChromium:
    """A dedicated headless Chromium on a fixed debugging port, which a test can SIGKILL (the
    whole process group: browser, renderers, GPU process) and start again on the same port, as
    a crashed or restarted browser of a user would come back. Each start gets a fresh profile."""

    def __init__(self, port: int) -> None:
        from gowasm_exporter.launcher import CHROME_FLAGS, find_chrome

        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        self.executable = find_chrome(os.environ.get("GOWASM_TEST_CHROME"))
        self.flags = [f for f in CHROME_FLAGS if not f.startswith("--remote-debugging-port=")]
        self.proc: asyncio.subprocess.Process | None = None
        self._profile: str | None = None

    async def start(self, timeout: float = 30.0) -> None:
        """Start Chromium and return once its DevTools endpoint answers."""
        import shutil
        import tempfile

        from gowasm_exporter.browser import fetch_websocket_url

        if self._profile is not None:
            shutil.rmtree(self._profile, ignore_errors=True)
        self._profile = tempfile.mkdtemp(prefix="gowasm-test-restartable-")
        self.proc = await asyncio.create_subprocess_exec(
            self.executable,
            *self.flags,
            f"--remote-debugging-port={self.port}",
            f"--user-data-dir={self._profile}",
            "about:blank",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                await fetch_websocket_url(self.endpoint, timeout=1.0)
                return
            except Exception:  # refused, reset, not yet HTTP: not ready
                if self.proc.returncode is not None or asyncio.get_running_loop().time() > deadline:
                    raise
            # The port opens when Chromium is ready; there is no event to wait on from outside.
            await asyncio.sleep(0.05)

    async def kill(self) -> None:
        """SIGKILL the browser's whole process group and reap it."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()

    async def close(self) -> None:
        import shutil

        if self.proc is not None and self.proc.returncode is None:
            await self.kill()
        if self._profile is not None:
            shutil.rmtree(self._profile, ignore_errors=True)


class FaultInjectingProxy:
    """FAKE network, fault injector: a TCP proxy between the exporter and a real browser.

    It forwards bytes both ways, unchanged, until a test tells it to fail:

    - :meth:`cut_mid_message`: forward the first half of the next websocket frame the browser
      sends, then reset both sockets (a connection that dies in the middle of a message);
    - :meth:`stall` / :meth:`resume`: stop forwarding while keeping every socket open (a network
      that silently stopped: no FIN, no RST), then go on;
    - :meth:`down` / :meth:`up`: refuse new connections (the browser unreachable).
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._refusing = False
        self._cut: asyncio.Future[int] | None = None

    @classmethod
    async def to(cls, endpoint: str) -> FaultInjectingProxy:
        from urllib.parse import urlsplit

        parts = urlsplit(endpoint)
        assert parts.hostname is not None and parts.port is not None
        proxy = cls(parts.hostname, parts.port)
        proxy._server = await asyncio.start_server(proxy._accept, "127.0.0.1", 0)
        proxy.port = proxy._server.sockets[0].getsockname()[1]
        return proxy

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut_mid_message(self) -> asyncio.Future[int]:
        """Arm the cut; the future resolves (with the bytes of the frame cut) once it happened."""
        self._cut = asyncio.get_running_loop().create_future()
        return self._cut

    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def down(self) -> None:
        """Refuse new connections and reset the open ones."""
        self._refusing = True
        for client, upstream in list(self._links):
            client.transport.abort()
            upstream.transport.abort()

    def up(self) -> None:
        self._refusing = False

    async def close(self) -> None:
        self.down()
        self.resume()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.accepted += 1
        link = (writer, up_writer)
        self._links.add(link)
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, link, from_browser=False),
                self._pump(up_reader, writer, link, from_browser=True),
                return_exceptions=True,
            )
        finally:
            self._links.discard(link)
            writer.transport.abort()
            up_writer.transport.abort()

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        link: tuple[asyncio.StreamWriter, asyncio.StreamWriter],
        *,
        from_browser: bool,
    ) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                writer.transport.abort()
                return
            await self._flowing.wait()
            if from_browser and self._cut is not None and not self._cut.done() and not data.startswith(b"HTTP/"):
                cut_at = _middle_of_first_frame(data)
                writer.write(data[:cut_at])
                await writer.drain()
                for side in link:
                    side.transport.abort()
                self._cut.set_result(cut_at)
                return
            writer.write(data)
            await writer.drain()


def _middle_of_first_frame(data: bytes) -> int:
    """An offset inside the payload of the first websocket frame in ``data`` (server frames are
    unmasked: 2 header bytes, then a 16- or 64-bit length for payloads of 126 bytes and more)."""
    length = data[1] & 0x7F
    header = 2 + {126: 2, 127: 8}.get(length, 0)
    if length == 126:
        length = int.from_bytes(data[2:4], "big")
    elif length == 127:
        length = int.from_bytes(data[2:10], "big")
    return min(len(data) - 1, header + max(1, length // 2))

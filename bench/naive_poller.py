"""The naive way: what a user would write to watch Go WASM pages without the exporter.

Every second, for every page of the browser, ``Runtime.evaluate`` of an expression that reads
what ``wasm_exec.js``' ``Go`` object shows without hooks (ref table size, memory size, whether
it exited) and ``Performance.getMetrics`` (JS heap, DOM nodes, listeners). It is written the way
a reasonable script does it, with nothing of the exporter: plain ``websockets`` and ``json``, one
browser connection with flattened sessions, the polls of a round sent together. It cannot know
what needs hooks (funcs created or released, panics and their traces, callback durations), so it
does less than the exporter for the same CDP traffic per page.

The scale benchmark (``bench/scale.py --naive``) runs it as a subprocess to compare its CPU per
page with the exporter's at the same one-second freshness. It also runs on its own:

``.venv/bin/python bench/naive_poller.py --cdp http://127.0.0.1:9222 [--interval 1] [--duration 30]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import signal
import sys
import time
import urllib.request
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

# What the page's Go object says without hooks. `go` is the name wasm_exec.js' README uses
# (`const go = new Go()`); a top-level `const` is reachable by name from Runtime.evaluate.
READ_GO = """
(() => {
  const g = typeof go !== "undefined" ? go : globalThis.go;
  if (!g || !Array.isArray(g._values)) return null;
  return {
    refs: g._values.length - 7 - (Array.isArray(g._idPool) ? g._idPool.length : 0),
    memory: g.mem ? g.mem.buffer.byteLength : null,
    exited: g.exited === true,
  };
})()
"""


class NaivePoller:
    """One browser connection; a session per page; a round of polls every ``interval``."""

    def __init__(self, ws: ClientConnection, interval: float) -> None:
        self.ws = ws
        self.interval = interval
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.sessions: dict[str, str] = {}  # targetId -> sessionId
        self.latest: dict[str, dict[str, Any]] = {}  # targetId -> what it read last
        self.rounds = 0
        self.polls = 0

    async def reader(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            future = self.pending.pop(message.get("id", 0), None)
            if future is not None and not future.done():
                future.set_result(message)

    async def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> Any:
        command: dict[str, Any] = {"id": next(self.ids), "method": method, "params": params or {}}
        if session is not None:
            command["sessionId"] = session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[command["id"]] = future
        await self.ws.send(json.dumps(command))
        answer = await asyncio.wait_for(future, 10)
        return answer.get("result", {})

    async def attach_new_pages(self) -> None:
        targets = (await self.send("Target.getTargets"))["targetInfos"]
        for target in targets:
            if target["type"] == "page" and target["targetId"] not in self.sessions:
                attached = await self.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
                session = attached["sessionId"]
                self.sessions[target["targetId"]] = session
                await self.send("Performance.enable", {}, session)

    async def poll(self, target_id: str, session: str) -> None:
        go = await self.send("Runtime.evaluate", {"expression": READ_GO, "returnByValue": True}, session)
        metrics = await self.send("Performance.getMetrics", {}, session)
        self.latest[target_id] = {
            "go": go.get("result", {}).get("value"),
            "metrics": {m["name"]: m["value"] for m in metrics.get("metrics", [])},
        }
        self.polls += 1

    async def run(self, duration: float | None) -> None:
        reader = asyncio.create_task(self.reader())
        started = time.monotonic()
        try:
            while duration is None or time.monotonic() - started < duration:
                began = time.monotonic()
                if self.rounds % 10 == 0:
                    await self.attach_new_pages()
                await asyncio.gather(*(self.poll(t, s) for t, s in self.sessions.items()), return_exceptions=True)
                self.rounds += 1
                await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - began)))
        finally:
            reader.cancel()


def websocket_url(endpoint: str) -> str:
    if endpoint.startswith("ws"):
        return endpoint
    with urllib.request.urlopen(endpoint.rstrip("/") + "/json/version", timeout=10) as response:
        return json.loads(response.read())["webSocketDebuggerUrl"]


async def main_async(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with connect(websocket_url(args.cdp), max_size=None) as ws:
        poller = NaivePoller(ws, args.interval)
        run = asyncio.create_task(poller.run(args.duration))
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({run, stopped}, return_when=asyncio.FIRST_COMPLETED)
        run.cancel()
        stopped.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run
    print(json.dumps({"pages": len(poller.sessions), "rounds": poller.rounds, "polls": poller.polls}), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cdp", required=True, help="browser DevTools endpoint (http://host:port or ws://...)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between rounds (default 1)")
    p.add_argument("--duration", type=float, help="stop after this many seconds (default: until SIGTERM)")
    asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())

"""What every benchmark shares: the machine report, the real parts (Go builds, a static site, one
headless Chromium, the exporter as a subprocess), process accounting and statistics.

The benchmarks are scripts, run on demand (``.venv/bin/python bench/<name>.py``), never collected
by pytest. They use the same real parts as the end-to-end tests (``tests/support.py``,
``examples/gowasm_demo``), so a number here is what a user's browser and a user's exporter do.
Every script imports only this module from the repository, because this module is what puts
``examples/`` and ``tests/`` on ``sys.path``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
for _sub in ("daemon", "examples", "tests"):
    if str(REPO / _sub) not in sys.path:
        sys.path.insert(0, str(REPO / _sub))

from gowasm_demo.server import StaticSite, serve  # noqa: E402
from gowasm_demo.toolchain import GoToolchain, ensure_go  # noqa: E402
from gowasm_exporter.cdp import CDPError  # noqa: E402
from gowasm_exporter.launcher import find_chrome, launch_chrome  # noqa: E402
from gowasm_exporter.shim import shim_source  # noqa: E402
from support import CDPClient, Exporter, Page, PageError, run_exporter  # noqa: E402

__all__ = [
    "BENCH",
    "REPO",
    "BenchSite",
    "CDPClient",
    "CDPError",
    "Exporter",
    "GoToolchain",
    "Page",
    "PageError",
    "ProcessSample",
    "Summary",
    "browser_cpu_seconds",
    "chromium",
    "compose_shim",
    "dump_json",
    "ensure_go",
    "interleaved",
    "machine_report",
    "main_thread_cpu_ns",
    "open_app",
    "open_blank",
    "percentile",
    "print_header",
    "process_sample",
    "renderer_pids",
    "run_exporter",
    "shim_accounting",
    "shim_internals",
    "shim_source",
    "summarize",
    "wait_browsers_up",
    "wait_ready",
]

APPS = BENCH / "apps"
BUILD = REPO / ".cache" / "bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- the machine -------------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / (1 << 20)
    return float("nan")


def _command_version(*cmd: str) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False).stdout
    except OSError:
        return "not found"
    return out.strip().splitlines()[0] if out.strip() else "unknown"


async def browser_version(endpoint: str) -> str:
    """The browser's own answer (product and V8 version), from the browser under test."""
    client = await CDPClient.connect(endpoint)
    try:
        v = await client.connection.send("Browser.getVersion")
        return f"{v.get('product')} (V8 {v.get('jsVersion')})"
    finally:
        await client.close()


def machine_report(*, chrome: str | None = None, go: Sequence[GoToolchain] = ()) -> dict[str, Any]:
    report: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": round(_ram_gib(), 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": _command_version("node", "--version"),
    }
    if chrome is not None:
        report["chromium"] = chrome
    if go:
        report["go"] = [_command_version(str(t.go), "version") for t in go]
    return report


def print_header(title: str, report: dict[str, Any], settings: dict[str, Any]) -> None:
    print(f"== {title}")
    for key, value in report.items():
        print(f"  {key:<10} {value}")
    print("  settings   " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    sys.stdout.flush()


# -- statistics --------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100), linear between closest ranks; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass(frozen=True, slots=True)
class Summary:
    """Median and spread of one series: spread is the interquartile range and the extremes."""

    n: int
    median: float
    p25: float
    p75: float
    lo: float
    hi: float

    def as_dict(self) -> dict[str, float]:
        return {"n": self.n, "median": self.median, "p25": self.p25, "p75": self.p75, "min": self.lo, "max": self.hi}


def summarize(values: Sequence[float]) -> Summary:
    return Summary(
        len(values),
        statistics.median(values) if values else float("nan"),
        percentile(values, 25),
        percentile(values, 75),
        min(values, default=float("nan")),
        max(values, default=float("nan")),
    )


def interleaved(configs: Sequence[str], reps: int, *, seed: int = 1) -> Iterator[tuple[int, str]]:
    """A B C, B C A, ...: every rep runs each configuration once, in a rotated order (the first
    of a rep is not always the same one, so warm-up and drift are spread over all of them)."""
    rng = random.Random(seed)
    for rep in range(reps):
        order = list(configs)
        rng.shuffle(order)
        for config in order:
            yield rep, config


# -- processes ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProcessSample:
    """CPU seconds (user + system) and resident memory of one process at one instant."""

    at: float  # time.monotonic()
    cpu: float
    rss: int  # bytes


def process_sample(pid: int) -> ProcessSample:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15 of proc(5))
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
    return ProcessSample(time.monotonic(), cpu, rss)


async def browser_cpu_seconds(client: CDPClient) -> float:
    """CPU seconds of every Chromium process (browser, renderers, GPU, utilities) so far.

    ``SystemInfo.getProcessInfo`` counts what ``/proc`` would, and also reaches processes of
    a browser that is not our child.
    """
    info = await client.connection.send("SystemInfo.getProcessInfo")
    return sum(float(p.get("cpuTime", 0.0)) for p in info.get("processInfo", ()))


# -- Go apps and the site that serves them -----------------------------------------------------


class BenchSite:
    """The bench apps built with the chosen toolchains: /go<version>/<app>/{index.html,main.wasm}
    (and the app's ``*.js``, such as the callbacks app's worker)."""

    def __init__(self, toolchains: Sequence[GoToolchain], apps: Sequence[str]) -> None:
        self.toolchains = list(toolchains)
        self.site = StaticSite({})
        self.wasm: dict[tuple[str, str], Path] = {}
        for go in self.toolchains:
            self.site.add(f"/go{go.version}/wasm_exec.js", go.wasm_exec_js)
            for app in apps:
                out = go.build_wasm(APPS / app, BUILD / f"go{go.version}" / app / "main.wasm")
                self.wasm[(go.version, app)] = out
                self.site.add(f"/go{go.version}/{app}/main.wasm", out)
                self.site.add(f"/go{go.version}/{app}/index.html", APPS / app / "index.html")
                for script in sorted((APPS / app).glob("*.js")):
                    self.site.add(f"/go{go.version}/{app}/{script.name}", script)

    def url(self, go: GoToolchain, app: str, query: str = "") -> str:
        return f"{self.site.base_url}/go{go.version}/{app}/index.html" + (f"?{query}" if query else "")

    @contextlib.contextmanager
    def serving(self) -> Iterator[BenchSite]:
        with serve(self.site):
            yield self


@contextlib.asynccontextmanager
async def chromium(extra_flags: tuple[str, ...] = ()) -> AsyncIterator[tuple[str, str]]:
    """One headless Chromium (the daemon's own launcher and flags): its endpoint and version."""
    async with launch_chrome(find_chrome(os.environ.get("GOWASM_BENCH_CHROME")), extra_flags=extra_flags) as ep:
        yield ep, await browser_version(ep)


async def open_blank(client: CDPClient) -> Page:
    """A tab on about:blank, attached by the bench's own client (navigate it afterwards)."""
    created = await client.connection.send("Target.createTarget", {"url": "about:blank"})
    attached = await client.connection.send("Target.attachToTarget", {"targetId": created["targetId"], "flatten": True})
    return Page(client, created["targetId"], client.connection.session(attached["sessionId"]))


async def wait_ready(page: Page, promise: str, timeout: float = 60.0) -> None:
    """Await a page-side promise (e.g. ``benchReady``), retrying while the document is not there yet."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await page.evaluate(f"{promise}.then(() => true)", await_promise=True)
            return
        except (PageError, CDPError):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)


def dump_json(path: str | None, result: dict[str, Any]) -> None:
    """Write the run's results (with its machine report) for docs/performance.md and diffs."""
    if path:
        Path(path).write_text(json.dumps(result, indent=1, default=str) + "\n")
        print(f"  results written to {path}")


async def wait_browsers_up(exporter: Exporter, timeout: float = 30.0) -> None:
    """Until the exporter is connected to every browser it watches (``/healthz``)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        browsers = (await exporter.json("/healthz")).get("browsers", {})
        if browsers and all(browsers.values()):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("the exporter did not connect to its browser; log:\n" + "\n".join(exporter.log_lines[-20:]))


@contextlib.asynccontextmanager
async def scraping(exporter: Exporter, every: float) -> AsyncIterator[None]:
    """Prometheus beside the exporter while the block runs: a ``/metrics`` scrape every ``every``
    seconds (0: none)."""

    async def scrape_forever() -> None:
        while True:
            with contextlib.suppress(Exception):
                await exporter.http.get("/metrics")
            await asyncio.sleep(every)

    task = asyncio.create_task(scrape_forever()) if every > 0 else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


SHIM_API = 'globalThis[Symbol.for("gowasm-exporter.shim")]'


async def shim_accounting(page: Page) -> str | None:
    """How the page's latest Go instance is instrumented, as the shim in it says (None: no shim)."""
    return await page.evaluate(
        f"(() => {{ const s = {SHIM_API}; if (!s) return null; const i = s.snapshot().instances;"
        " return i.length ? i[i.length - 1].accounting : 'no instance'; })()"
    )


def main_thread_cpu_ns(pid: int) -> int:
    """Time the main thread of ``pid`` has run on a CPU, in ns (``/proc/PID/schedstat``).

    A renderer runs the page's JavaScript and wasm on its main thread (tid = pid), so this is the
    page's own CPU time, exact to the nanosecond and blind to time spent waiting for a core:
    unlike wall time, it does not grow when other processes compete for the machine.
    """
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


async def renderer_pids(client: CDPClient) -> list[int]:
    info = await client.connection.send("SystemInfo.getProcessInfo")
    return [int(p["id"]) for p in info.get("processInfo", ()) if p.get("type") == "renderer"]


# -- the shim, composed from a checkout (or a patched copy of one) ------------------------------

BENCH_BINDING = "__gowasmBenchBinding"


def _shim_body(root: Path) -> str:
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    return "\n".join((root / name).read_text(encoding="utf-8") for name in manifest["files"])


def compose_shim(root: Path | None = None, *, binding: str = BENCH_BINDING) -> str:
    """The injected text, composed as ``daemon/gowasm_exporter/shim.py`` does, from ``root``
    (default: this checkout's ``instrument/``; a patched copy measures a proposed change)."""
    if root is None:
        return shim_source(binding=binding)
    config = json.dumps({"binding": binding, "maxStderr": 65536, "maxInstances": 64}, separators=(",", ":"))
    return f"(function (CONFIG) {{\n{_shim_body(root)}\n}})({config});\n"


def shim_internals(root: Path | None = None, names: Sequence[str] = ("prepareGoModule",)) -> str:
    """An expression giving the shim's internal functions without installing any hook: the
    modules before main.js, as ``instrument/test/wasm.test.mjs`` evaluates them."""
    body = _shim_body(root or REPO / "instrument")
    cut = body.index("// main.js:")
    config = json.dumps({"binding": BENCH_BINDING, "maxStderr": 65536, "maxInstances": 64})
    return f"(function (CONFIG) {{\n{body[:cut]}\nreturn {{ {', '.join(names)} }};\n}})({config})"


async def open_app(client: CDPClient, url: str, ready: str = "benchReady", shim: str | None = None) -> Page:
    """A new tab navigated to ``url`` (with ``shim`` added as a new-document script first, when
    given), once the page-side promise ``ready`` resolved."""
    page = await open_blank(client)
    try:
        await page.session.send("Page.enable")
        if shim is not None:
            await page.session.send("Page.addScriptToEvaluateOnNewDocument", {"source": shim})
        await page.session.send("Page.navigate", {"url": url})
        await wait_ready(page, ready)
    except BaseException:
        await page.close()
        raise
    return page

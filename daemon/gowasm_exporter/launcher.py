"""The embedded headless Chromium, for running without a browser of one's own (no ``--cdp``).

It starts Chromium on a free debugging port with a fresh profile and gives back the HTTP endpoint
the rest of the daemon treats like any other ``--cdp`` browser, and starts it again when it dies
(:class:`EmbeddedChromium`): a monitor that runs for weeks outlives its browser. The flags are the ones a machine
without internet needs (no background networking, no component updates) plus what headless
Chromium needs as root and in containers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CHROME_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")

CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--mute-audio",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)

# Delays before relaunching an embedded Chromium that exited, by how many times in a row it died
# within RELAUNCH_STABLE_AFTER seconds of its start.
RELAUNCH_DELAYS = (0.0, 1.0, 2.0, 5.0, 10.0, 30.0)
RELAUNCH_STABLE_AFTER = 60.0


class LaunchError(RuntimeError):
    """Chromium could not be found or did not open its debugging port."""


def find_chrome(explicit: str | None = None) -> str:
    """The Chromium executable: ``explicit`` if given, else the first known name on PATH."""
    if explicit:
        path = shutil.which(explicit)
        if path is None:
            raise LaunchError(f"--chrome {explicit!r}: no such executable")
        return path
    for name in CHROME_NAMES:
        path = shutil.which(name)
        if path is not None:
            return path
    raise LaunchError(
        "no Chromium found on PATH (tried " + ", ".join(CHROME_NAMES) + "); install one "
        "(Debian: apt-get install chromium) or pass --chrome PATH or --cdp URL"
    )


@contextlib.asynccontextmanager
async def launch_chrome(
    executable: str, *, extra_flags: tuple[str, ...] = (), start_timeout: float = 30.0
) -> AsyncIterator[str]:
    """Run Chromium for the duration of the context; yield its ``http://127.0.0.1:PORT``.

    The port is chosen by Chromium (``--remote-debugging-port=0``) and read from the
    ``DevToolsActivePort`` file it writes into the profile, so parallel runs never collide.
    """
    running = await _start(executable, extra_flags, start_timeout)
    try:
        yield running.endpoint
    finally:
        await running.stop()


@dataclass(slots=True)
class _Running:
    proc: asyncio.subprocess.Process
    endpoint: str
    profile: str
    started: float  # time.monotonic()

    async def stop(self) -> None:
        await _stop(self.proc)
        shutil.rmtree(self.profile, ignore_errors=True)


async def _start(executable: str, extra_flags: tuple[str, ...], start_timeout: float) -> _Running:
    profile = tempfile.mkdtemp(prefix="gowasm-exporter-chrome-")
    args = [executable, *CHROME_FLAGS, f"--user-data-dir={profile}", *extra_flags, "about:blank"]
    log.info("starting %s", executable)
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        port = await _wait_for_port(Path(profile) / "DevToolsActivePort", proc, start_timeout)
    except BaseException:
        await _stop(proc)
        shutil.rmtree(profile, ignore_errors=True)
        raise
    endpoint = f"http://127.0.0.1:{port}"
    log.info("Chromium %d listening at %s", proc.pid, endpoint)
    return _Running(proc, endpoint, profile, time.monotonic())


class EmbeddedChromium:
    """The embedded Chromium of a daemon without ``--cdp``, relaunched whenever it dies.

    ``async with EmbeddedChromium(path)`` launches it: a :class:`LaunchError` there is fatal (this
    machine cannot run Chromium at all). :meth:`supervise`, run as a task, relaunches it each time
    it exits (crash, OOM kill, someone's ``kill``), with a fresh profile and a growing delay while
    it keeps dying young. :meth:`endpoint` is the current DevTools endpoint, for the browser's
    supervisor to re-read before each connection attempt (a relaunch gets a new port).
    """

    def __init__(self, executable: str, *, extra_flags: tuple[str, ...] = (), start_timeout: float = 30.0) -> None:
        self.executable = executable
        self.extra_flags = extra_flags
        self.start_timeout = start_timeout
        self.launches = 0
        self._running: _Running | None = None
        self._ready = asyncio.Event()

    async def __aenter__(self) -> EmbeddedChromium:
        await self._launch()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._ready.clear()
        running, self._running = self._running, None
        if running is not None:
            await running.stop()

    async def endpoint(self) -> str:
        await self._ready.wait()
        assert self._running is not None
        return self._running.endpoint

    async def _launch(self) -> None:
        self._running = await _start(self.executable, self.extra_flags, self.start_timeout)
        self.launches += 1
        self._ready.set()

    async def supervise(self) -> None:
        failures = 0
        while True:
            running = self._running
            if running is not None:
                code = await running.proc.wait()
                self._ready.clear()
                self._running = None
                shutil.rmtree(running.profile, ignore_errors=True)
                lived = time.monotonic() - running.started
                failures = failures + 1 if lived < RELAUNCH_STABLE_AFTER else 0
                log.warning("embedded Chromium %d exited with code %s; relaunching it", running.proc.pid, code)
            await asyncio.sleep(RELAUNCH_DELAYS[min(failures, len(RELAUNCH_DELAYS) - 1)])
            try:
                await self._launch()
            except LaunchError as exc:
                failures += 1
                log.error("relaunching the embedded Chromium failed: %s", exc)


async def _wait_for_port(path: Path, proc: asyncio.subprocess.Process, timeout: float) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if proc.returncode is not None:
            raise LaunchError(f"Chromium exited with code {proc.returncode} before opening its debugging port")
        with contextlib.suppress(OSError, ValueError, IndexError):
            first = path.read_text().splitlines()[0]
            return int(first)
        # Chromium writes the file once; there is no event to wait on short of inotify.
        await asyncio.sleep(0.05)
    raise LaunchError(f"Chromium did not open its debugging port within {timeout:g} s")


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), 5)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()

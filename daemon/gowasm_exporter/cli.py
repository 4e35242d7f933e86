"""The program: flags -> browsers (given or embedded) -> supervisors beside the HTTP server.

One task group runs uvicorn's ``Server.serve()`` next to one :class:`BrowserSupervisor` per
browser. SIGINT/SIGTERM stop it: the server drains, supervisors are cancelled (their connections
close, which lets paused-by-us targets run: the daemon never leaves a page paused), and the
embedded Chromium, if any, is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Generator, Sequence

import uvicorn
from prometheus_client import CollectorRegistry

from . import eventlog
from .browser import BrowserSupervisor, Endpoint
from .collectors import ExporterCollector, GoInstanceCollector, PageCollector
from .config import Config, parse_config
from .health import ExporterHealth
from .instrument import InstrumentConfig
from .launcher import EmbeddedChromium, LaunchError, find_chrome
from .pacing import ScrapePacer
from .shim import DEFAULT_BINDING
from .state import ExporterState, InstanceEnd
from .targets import UrlFilter
from .web import create_app

log = logging.getLogger("gowasm_exporter")

SHUTDOWN_GRACE = 2.0


class _Server(uvicorn.Server):
    """uvicorn's server without its own signal handling (the daemon owns the signals), and with a
    main loop that wakes once a second instead of ten times.

    uvicorn's own loop sleeps 0.1 s between checks of ``should_exit``, only to refresh the
    ``Date`` header once a second: ten wake-ups a second were most of an idle daemon's CPU, and
    with ``--poll-on-scrape`` a good part of a busy one's (docs/performance.md, section 5b).
    :meth:`stop` wakes the loop at once, so shutdown is as quick as before.
    """

    tick = 1.0  # seconds between wake-ups (uvicorn's Date header has a one-second resolution)

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._stopping = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    def stop(self) -> None:
        self.should_exit = True
        self._stopping.set()

    async def main_loop(self) -> None:
        counter = 0  # on_tick refreshes the Date header when counter % 10 == 0: every call here
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.tick)


def build_registry(
    state: ExporterState, *, leak_sites: int = 10, health: ExporterHealth | None = None
) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GoInstanceCollector(state, leak_sites=leak_sites))
    registry.register(PageCollector(state))
    registry.register(ExporterCollector(state, health))
    return registry


async def run(config: Config, *, ready: asyncio.Event | None = None) -> None:
    health = ExporterHealth()

    def on_end(end: InstanceEnd) -> None:
        health.end_recorded(config.panic_history)
        eventlog.log_end(end)

    state = ExporterState(max_label_values=config.max_label_values, end_history=config.panic_history, on_end=on_end)
    pacer = ScrapePacer() if config.poll_on_scrape else None
    app = create_app(
        state,
        build_registry(state, leak_sites=config.leak_sites, health=health),
        api_token=config.api_token,
        on_scrape=None if pacer is None else pacer.scraped,
    )
    server = _Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_level="warning",
            lifespan="off",
            # Shutdown waits this long at most for open HTTP connections: SIGTERM ends the
            # daemon within a few seconds even with a scraper hanging on.
            timeout_graceful_shutdown=SHUTDOWN_GRACE,
        )
    )
    instrument_config = InstrumentConfig(
        binding=DEFAULT_BINDING,
        poll_interval=config.poll_interval,
        command_timeout=config.command_timeout,
        timing_sample=config.call_timing_sample,
        push_poll_interval=config.push_poll_interval,
        pacer=pacer,
    )
    url_filter = UrlFilter(config.include, config.exclude)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
        loop.add_signal_handler(signal.SIGUSR1, dump_tasks)

    async with contextlib.AsyncExitStack() as stack:
        embedded: EmbeddedChromium | None = None
        if config.cdp:
            endpoints = [Endpoint(url, url) for url in config.cdp]
        else:
            embedded = await stack.enter_async_context(EmbeddedChromium(find_chrome(config.chrome)))
            endpoints = [Endpoint("embedded", await embedded.endpoint(), locate=embedded.endpoint)]
        supervisors = [
            BrowserSupervisor(
                endpoint,
                state=state,
                config=instrument_config,
                url_filter=url_filter,
                keep_open=config.open,
                health=health,
                reload_after_exit=config.reload_after_exit,
            )
            for endpoint in endpoints
        ]
        async with asyncio.TaskGroup() as group:
            serving = group.create_task(server.serve(), name="http")
            tasks = [group.create_task(s.run(), name=f"browser {s.endpoint.name}") for s in supervisors]
            if embedded is not None:
                tasks.append(group.create_task(embedded.supervise(), name="embedded chromium"))
            while not server.started and not serving.done():
                await asyncio.sleep(0.02)  # uvicorn exposes no startup event
            if serving.done():
                stop.set()
            else:
                log.info("serving http://%s:%d/metrics", config.host, config.port)
                if ready is not None:
                    ready.set()
            await stop.wait()
            server.stop()
            for task in tasks:
                task.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
            with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
                loop.remove_signal_handler(sig)


def dump_tasks() -> None:
    """SIGUSR1: write every asyncio task and where it waits to stderr, for a daemon that seems stuck
    (``kill -USR1 PID``); it goes on running."""
    tasks = asyncio.all_tasks()
    print(f"gowasm-exporter: {len(tasks)} task(s)", file=sys.stderr)
    for task in tasks:
        print(f"-- {task.get_name()}: {task.get_coro()!r}", file=sys.stderr)
        task.print_stack(limit=8, file=sys.stderr)
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_config(argv)
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    eventlog.configure(sys.stderr)
    try:
        asyncio.run(run(config))
    except LaunchError as exc:
        log.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        pass
    return 0

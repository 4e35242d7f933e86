"""The HTTP server's main loop: uvicorn's, woken once a second instead of ten times, and ended at
once by ``stop()`` (the daemon's signal handler calls it)."""

from __future__ import annotations

import asyncio
import email.utils

import httpx
import uvicorn
from fastapi import FastAPI

from gowasm_exporter.cli import _Server
from support import free_port


async def test_every_tick_refreshes_the_date_header_and_stop_ends_the_loop() -> None:
    app = FastAPI()

    @app.get("/")
    def root() -> dict[str, str]:
        return {}

    port = free_port()
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    server.tick = 3600  # the loop would sleep for an hour: only stop() can end it within the test
    ticks: list[int] = []
    on_tick = server.on_tick

    async def counting_on_tick(counter: int) -> bool:
        ticks.append(counter)
        return await on_tick(counter)

    server.on_tick = counting_on_tick  # type: ignore[method-assign]
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)  # uvicorn exposes no startup event
        async with httpx.AsyncClient() as http:
            response = await http.get(f"http://127.0.0.1:{port}/")
        assert response.status_code == 200
        assert email.utils.parsedate_to_datetime(response.headers["date"]) is not None
    finally:
        server.stop()
        await asyncio.wait_for(serving, 10)
    # uvicorn refreshes the Date header on ticks whose counter is a multiple of ten: every tick here.
    assert ticks == [0, 10]  # at start, and when stop() woke the loop

"""Panic forensics: every way a Go instance ends, classified and attributed, in real Chromium.

One exporter watches every case; each case opens its own tab of the ``endings`` app, ends the
instance one way, and checks the record on ``/api/panics``, the JSON event log line, and the
calls that came after the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio

from conftest import app_for
from gowasm_exporter.cdp import CDPError
from support import CDPClient, Exporter, Page, PageError, run_exporter


@dataclass(frozen=True)
class Case:
    name: str
    action: str | None  # JS run in the page once the app is ready; None: the start-up mode ends it
    kind: str
    value: str | None
    exit_code: int | None
    entry: str
    top_function: str | None = None
    mode: str | None = None
    func_name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case("callback panic", "endings.panicValue('x')", "panic", "boom: x", 2, "callback",
         "main.main.func", func_name="endings.panicValue"),
    Case("error value", "endings.panicError()", "panic", "wrapped: file does not exist", 2, "callback",
         "main.main.func", func_name="endings.panicError"),
    Case("nil dereference", "endings.nilDeref()", "panic",
         "runtime error: invalid memory address or nil pointer dereference", 2, "callback", "main.main.func"),
    Case("goroutine panic", "endings.panicInGoroutine()", "panic", "boom in goroutine", 2, "callback",
         "main.main.func", func_name="endings.panicInGoroutine", extra={"created_by": True}),
    Case("re-panic", "endings.repanic()", "panic", None, 2, "callback", "main.main.func",
         extra={"value_prefix": "boom again [recovered"}),
    Case("nested panic", "endings.nestedPanic()", "panic", "first", 2, "callback", "main.main.func"),
    Case("JavaScript error", "endings.jsError()", "panic", "JavaScript error: js-boom", 2, "callback"),
    Case("JS throws a string", "endings.jsThrowString()", "fatal", None, 2, "callback",
         extra={"value_prefix": "panic while printing panic value"}),
    Case("fatal error", "endings.unlockUnlocked()", "fatal", "sync: unlock of unlocked mutex", 2, "callback",
         func_name="endings.unlockUnlocked"),
    Case("os.Exit", "endings.exit(3)", "exit", None, 3, "callback", func_name="endings.exit"),
    Case("Go timer panic", "endings.panicLater(5)", "panic", "boom in a Go timer", 2, "timer", "main.main.func"),
    Case("click listener", "document.getElementById('explode').click()", "panic", "boom in a click listener", 2,
         "callback", "main.main.func", extra={"listener": True}),
    Case("panic in main", None, "panic", "boom in main", 2, "run", "main.main", mode="panic-main"),
    Case("main returns", None, "exit", None, 0, "run", mode="return"),
]  # fmt: skip


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def exporter(chrome: str) -> AsyncIterator[Exporter]:
    # Every callback timed, so that one slow call lands in its bucket (see the sampling test).
    async with run_exporter("--cdp", chrome, "--poll-interval", "0.2", "--call-timing-sample", "1") as running:
        await running.wait_for_log("connected")
        yield running


async def wait_end(exporter: Exporter, target_id: str, timeout: float = 20) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        for record in (await exporter.json("/api/panics"))["panics"]:
            if record["target_id"] == target_id:
                return record
        await asyncio.sleep(0.05)
    raise AssertionError(f"no end recorded for {target_id}: {await exporter.target(target_id)}")


async def open_endings(client: CDPClient, url: str, *, ready: bool) -> Page:
    page = await client.open_page(url)
    if ready:
        await page.evaluate("window.endingsReady", await_promise=True)
    return page


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_each_ending_is_classified_and_attributed(
    case: Case, go, site, client: CDPClient, exporter: Exporter
) -> None:
    """Kind, value, top frame, exit code and attribution of one ending; calls after it linked."""
    app = app_for(site, go, "endings")
    url = app.url + (f"?mode={case.mode}" if case.mode else "")
    page = await open_endings(client, url, ready=case.mode is None)
    try:
        if case.action is not None:
            assert await page.evaluate(case.action) is None  # a Go panic never throws into JS
        end = await wait_end(exporter, page.target_id)
        assert end["kind"] == case.kind
        assert end["exit_code"] == case.exit_code
        assert end["page"] == app.url and end["module"] == app.module_path
        if case.value is not None:
            assert end["value"] == case.value
        if "value_prefix" in case.extra:
            assert end["value"].startswith(case.extra["value_prefix"])
        if case.kind in ("panic", "fatal"):
            assert end["trace"].startswith(("panic: ", "fatal error: "))
            assert end["goroutine"] is not None
        else:
            assert end["value"] is None and end["trace"] == ""
        if case.top_function is not None:
            assert end["top_function"].startswith(case.top_function)
            assert end["top_location"].rsplit(":", 1)[0].endswith("/tests/apps/endings/main.go")
        cause = end["cause"]
        assert end["instrumented"] == "early"
        assert cause["entry"] == case.entry
        if case.func_name is not None:
            assert cause["func_name"] == case.func_name
        if case.entry == "callback":
            assert isinstance(cause["func_id"], int)
            assert "wasm_exec.js" in cause["js_stack"]
        if case.extra.get("created_by"):
            assert any(line.startswith("main.main.func") for line in end["created_by"])
        if case.extra.get("listener"):
            assert (cause["registered_as"], cause["registered_type"]) == ("listener", "click")
            assert cause["registered_target"] == "button#explode.danger.big"
            assert (cause["event_type"], cause["event_target"]) == ("click", "button#explode.danger.big")

        # The JSON event log line for this end.
        line = await exporter.wait_for_log(f'"target_id": "{page.target_id}"')
        logged = json.loads(line)
        assert (logged["event"], logged["kind"], logged["exit_code"]) == (
            "gowasm_instance_end",
            case.kind,
            case.exit_code,
        )

        # Calls into the dead instance are counted and linked to this end.
        if case.mode is None:
            for _ in range(2):
                with pytest.raises(PageError, match="Go program has already exited"):
                    await page.evaluate("endings.noop()")
            await exporter.settled(page.target_id)
            end = await wait_end(exporter, page.target_id)
            assert end["calls_after_exit"] == 2
            assert [c["func_name"] for c in end["late_calls"]] == ["endings.noop", "endings.noop"], end["late_calls"]
            assert all("Runtime.evaluate" not in (c["js_stack"] or "") for c in end["late_calls"])
    finally:
        await page.close()


async def test_pending_go_timer_after_exit_is_a_call_after_exit(go, site, client, exporter: Exporter) -> None:
    """A Go timer still pending at exit fires into the dead instance: counted, linked, no func."""
    app = app_for(site, go, "endings")
    page = await open_endings(client, app.url, ready=True)
    try:
        await page.evaluate("endings.sleepInBackground(300)")
        await page.evaluate("endings.exit(4)")
        end = await wait_end(exporter, page.target_id)
        assert (end["kind"], end["exit_code"]) == ("exit", 4)
        deadline = asyncio.get_running_loop().time() + 10
        while end["calls_after_exit"] < 1 and asyncio.get_running_loop().time() < deadline:
            await exporter.settled(page.target_id, polls=1)
            end = await wait_end(exporter, page.target_id)
        assert end["calls_after_exit"] == 1
        assert [c["func_id"] for c in end["late_calls"]] == [None]
    finally:
        await page.close()


async def test_page_gone_or_crashed_while_go_runs(go, site, client, exporter: Exporter) -> None:
    """Closing, navigating away from, or crashing a page with a running instance records its end."""
    app = app_for(site, go, "endings")
    crashes_before = (await exporter.metrics()).get("gowasm_page_crashes_total", page=app.url) or 0

    crashed = await open_endings(client, app.url, ready=True)
    await exporter.settled(crashed.target_id)
    with contextlib.suppress(CDPError):
        await crashed.session.send("Page.crash", timeout=2)  # no answer: the session dies with the renderer
    end = await wait_end(exporter, crashed.target_id)
    assert end["kind"] == "crash"
    assert (await exporter.metrics()).get("gowasm_page_crashes_total", page=app.url) == crashes_before + 1
    await crashed.close()

    left = await open_endings(client, app.url, ready=True)
    await exporter.settled(left.target_id)
    await left.session.send("Page.navigate", {"url": "about:blank"})
    end = await wait_end(exporter, left.target_id)
    assert end["kind"] == "unload"
    await left.close()


async def test_slow_callback_lands_in_its_bucket(go, site, client, exporter: Exporter) -> None:
    """A callback that stays 300 ms in Go adds one to the (0.25, 0.5] bucket and one long call."""
    app = app_for(site, go, "endings")
    labels = {"page": app.url, "module": app.module_path}
    page = await open_endings(client, app.url, ready=True)
    try:
        await exporter.settled(page.target_id)
        before = await exporter.metrics()
        await page.evaluate("endings.busy(300)")
        await exporter.settled(page.target_id)
        after = await exporter.metrics()

        def delta(name: str, **extra: str) -> float:
            return (after.get(name, **labels, **extra) or 0) - (before.get(name, **labels, **extra) or 0)

        assert delta("gowasm_func_call_duration_seconds_bucket", le="0.25") == 0
        assert delta("gowasm_func_call_duration_seconds_bucket", le="0.5") == 1
        assert delta("gowasm_func_call_duration_seconds_count") == 1
        assert delta("gowasm_func_calls_long_total") == 1
        assert 0.3 <= delta("gowasm_func_call_duration_seconds_sum") < 0.5
    finally:
        await page.close()

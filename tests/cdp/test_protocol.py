"""The CDP router, driven with plain dicts: no browser, no socket."""

from __future__ import annotations

import asyncio

import pytest

from gowasm_exporter.cdp import ConnectionLost, Event, ProtocolError, Router, TargetClosed


async def test_answer_resolves_its_command() -> None:
    """An answer resolves exactly the future of the command with its id."""
    router = Router()
    first_id, first, first_future = router.prepare("Runtime.evaluate", {"expression": "1"}, "S1")
    second_id, _, second_future = router.prepare("Target.getTargets")
    assert first == {"id": first_id, "method": "Runtime.evaluate", "params": {"expression": "1"}, "sessionId": "S1"}
    assert router.feed({"id": second_id, "result": {"targetInfos": []}}) is None
    assert second_future.result() == {"targetInfos": []}
    assert not first_future.done()
    assert router.pending_count == 1


async def test_error_answer_raises_protocol_error() -> None:
    """An error answer fails the command with the browser's message."""
    router = Router()
    command_id, _, future = router.prepare("Page.navigate")
    router.feed({"id": command_id, "error": {"code": -32000, "message": "Cannot navigate"}})
    with pytest.raises(ProtocolError, match=r"Page\.navigate: Cannot navigate") as info:
        await future
    assert info.value.code == -32000


async def test_events_are_returned_with_their_session() -> None:
    """Events come back as Event values, browser-level ones with no session."""
    router = Router()
    assert router.feed({"method": "Target.targetCreated", "params": {"targetInfo": {}}}) == Event(
        "Target.targetCreated", {"targetInfo": {}}, None
    )
    assert router.feed({"method": "Runtime.bindingCalled", "params": {"payload": "x"}, "sessionId": "S"}) == Event(
        "Runtime.bindingCalled", {"payload": "x"}, "S"
    )


@pytest.mark.parametrize("junk", [None, [], "text", 3, {"id": 99, "result": {}}, {"params": {}}, {"method": 5}])
async def test_junk_and_stray_answers_are_ignored(junk: object) -> None:
    """Messages that are neither an expected answer nor an event change nothing."""
    router = Router()
    _, _, future = router.prepare("Browser.getVersion")
    assert router.feed(junk) is None
    assert not future.done()


async def test_session_detach_fails_only_that_sessions_calls() -> None:
    """A detached session's pending calls fail at once; others keep waiting."""
    router = Router()
    _, _, on_a = router.prepare("Runtime.evaluate", session_id="A")
    _, _, on_b = router.prepare("Runtime.evaluate", session_id="B")
    router.fail_session("A", TargetClosed("gone"))
    with pytest.raises(TargetClosed):
        await on_a
    assert not on_b.done()


async def test_connection_loss_fails_everything_and_refuses_new_calls() -> None:
    """After the socket is lost, pending and new calls fail with ConnectionLost."""
    router = Router()
    _, _, pending = router.prepare("Target.getTargets")
    router.fail_all(ConnectionLost("socket closed"))
    with pytest.raises(ConnectionLost):
        await pending
    command_id, message, refused = router.prepare("Target.getTargets")
    assert (command_id, message) == (0, {})
    with pytest.raises(ConnectionLost):
        await asyncio.wait_for(refused, 1)

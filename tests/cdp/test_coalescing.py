"""The coalescing transport under the CDP websocket: frames written in one event-loop turn go to
the socket in one write, in order. The transport below it is a recording fake (what the real
socket transport was handed is all there is to see)."""

from __future__ import annotations

import asyncio

from gowasm_exporter.cdp.connection import CoalescingTransport


class RecordingTransport(asyncio.WriteTransport):
    """Fake: records what it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.calls: list[str] = []
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.calls.append("close")
        self.closing = True

    def abort(self) -> None:
        self.calls.append("abort")
        self.closing = True

    def write_eof(self) -> None:
        self.calls.append("write_eof")

    def get_write_buffer_size(self) -> int:
        return 7


async def test_writes_of_one_turn_are_one_write_in_order() -> None:
    real = RecordingTransport()
    transport = CoalescingTransport(real)
    transport.write(b"a")
    transport.write(bytearray(b"b"))
    transport.writelines([b"c", memoryview(b"d")])
    assert real.writes == []
    await asyncio.sleep(0)
    assert real.writes == [b"abcd"]
    transport.write(b"e")
    await asyncio.sleep(0)
    assert real.writes == [b"abcd", b"e"]
    assert transport.get_write_buffer_size() == 7  # everything else is the real transport's


async def test_close_and_half_close_flush_first_and_abort_drops() -> None:
    real = RecordingTransport()
    transport = CoalescingTransport(real)
    transport.write(b"close frame")
    transport.write_eof()
    assert (real.writes, real.calls) == ([b"close frame"], ["write_eof"])
    transport.write(b"x")
    transport.close()
    assert (real.writes, real.calls) == ([b"close frame", b"x"], ["write_eof", "close"])

    real = RecordingTransport()
    transport = CoalescingTransport(real)
    transport.write(b"lost")
    transport.abort()
    await asyncio.sleep(0)
    assert (real.writes, real.calls) == ([], ["abort"])

"""Reading the runtime's fd-2 text: kind, value, goroutine and top frame, across Go versions."""

from __future__ import annotations

import pytest

from gowasm_exporter.panics import parse_exit_text

CALLBACK_PANIC_121 = """panic: boom-in-callback

goroutine 6 [running]:
main.main.func2({{}, 0x7ff8000100000005, 0x0}, {0x1c3a0, 0x1, 0x1})
\t/src/app/main.go:41 +0x5
syscall/js.handleEvent()
\t/go/src/syscall/js/func.go:100 +0x23
"""

FATAL_OOM_127 = """runtime: out of memory: cannot allocate 268435456-byte block (4030627840 in use)
fatal error: out of memory

goroutine 1 gp=0x1c38000 m=0 mp=0x4f5e0 [running]:
runtime.throw({0x1f2b1, 0xd})
\t/go/src/runtime/panic.go:1101 +0x6
runtime.(*mcache).allocLarge(0x0, 0x10000000, 0x1)
\t/go/src/runtime/mcache.go:234 +0x2a
main.grow(...)
\t/src/app/main.go:12
main.main()
\t/src/app/main.go:20 +0x3
"""

REPANIC_121 = """panic: boom [recovered]
\tpanic: boom

goroutine 1 [running]:
main.main.func1()
\t/src/app/main.go:9 +0x4
"""

REPANIC_125 = """panic: boom [recovered, repanicked]

goroutine 1 [running]:
main.main.func1()
\t/src/app/main.go:9 +0x4
"""

PANIC_PRINTING_PANIC = """panic: (*js.ValueError) 0x1234
fatal error: panic while printing panic value: type *js.ValueError

goroutine 1 gp=0x1 m=0 mp=0x2 [running]:
main.main()
\t/src/app/main.go:5 +0x1
"""


def test_callback_panic() -> None:
    """A panic in a js.FuncOf callback: value, goroutine, and the callback as top frame."""
    info = parse_exit_text(CALLBACK_PANIC_121)
    assert info is not None
    assert (info.kind, info.message, info.goroutine) == ("panic", "boom-in-callback", 6)
    assert (info.top_function, info.top_location) == ("main.main.func2", "/src/app/main.go:41")


def test_fatal_error_with_runtime_line_and_new_goroutine_header() -> None:
    """A fatal error after a "runtime:" line, with the 1.22+ gp=/m=/mp= header, skips runtime frames."""
    info = parse_exit_text(FATAL_OOM_127)
    assert info is not None
    assert (info.kind, info.message, info.goroutine) == ("fatal", "out of memory", 1)
    assert (info.top_function, info.top_location) == ("main.grow", "/src/app/main.go:12")


@pytest.mark.parametrize("text", [REPANIC_121, REPANIC_125])
def test_repanic_formats(text: str) -> None:
    """Both re-panic formats (before and since Go 1.25) give the same value."""
    info = parse_exit_text(text)
    assert info is not None
    assert info.kind == "panic"
    assert info.message.startswith("boom [recovered")
    assert info.top_function == "main.main.func1"


def test_panic_while_printing_panic_is_fatal() -> None:
    info = parse_exit_text(PANIC_PRINTING_PANIC)
    assert info is not None
    assert (info.kind, info.message) == ("fatal", "panic while printing panic value: type *js.ValueError")


@pytest.mark.parametrize("text", ["", "exit code: 3\n", "hello\nworld\n", "goroutine 1 [running]:\n"])
def test_no_panic(text: str) -> None:
    """os.Exit, main returning, or ordinary output: no panic."""
    assert parse_exit_text(text) is None

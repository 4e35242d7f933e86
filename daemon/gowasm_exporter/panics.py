"""Reading the Go runtime's fd-2 text at an instance's exit: what ended it, and where.

The formats are those of Go 1.21 to 1.27 (shared/reference/go-wasm-runtime.md section 3):
``panic: VALUE`` (with `` [recovered]`` / `` [recovered, repanicked]`` on re-panics) or
``fatal error: MESSAGE`` (possibly after a ``runtime: ...`` line), then an empty line and the
goroutine traces, whose headers gained ``gp=… m=… mp=…`` on fatal errors in 1.22.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

GOROUTINE_HEADER = re.compile(r"^goroutine (\d+)(?: gp=\S+ m=\S+(?: mp=\S+)?)? \[(.*)\]:$")
FRAME_LOCATION = re.compile(r"^\t(.+):(\d+)(?: \+0x[0-9a-f]+)?$")
RUNTIME_PACKAGES = ("runtime.", "syscall/js.", "syscall.")


@dataclass(frozen=True, slots=True)
class PanicInfo:
    kind: str  # "panic" or "fatal"
    message: str  # the panic value or fatal error text, first line
    goroutine: int | None
    top_function: str | None  # innermost frame outside the runtime and syscall/js
    top_location: str | None  # its file:line
    created_by: tuple[str, ...]  # "created by F in goroutine N" lines, panicking goroutine first


def parse_exit_text(text: str) -> PanicInfo | None:
    """The panic described by ``text``, or ``None`` when it holds none (``os.Exit``, main returned)."""
    lines = text.split("\n")
    start = next((i for i, line in enumerate(lines) if line.startswith(("panic: ", "fatal error: "))), None)
    if start is None:
        return None
    kind = "panic"
    message = lines[start].removeprefix("panic: ")
    # A fatal error may follow a panic line ("panic while printing panic value"), so look for one
    # up to the first goroutine header.
    for line in lines[start:]:
        if GOROUTINE_HEADER.match(line):
            break
        if line.startswith("fatal error: "):
            kind = "fatal"
            message = line.removeprefix("fatal error: ")
            break
    goroutine, function, location = _top_frame(lines[start:])
    created_by = tuple(line.removeprefix("created by ") for line in lines[start:] if line.startswith("created by "))
    return PanicInfo(kind, message, goroutine, function, location, created_by[:16])


def _top_frame(lines: list[str]) -> tuple[int | None, str | None, str | None]:
    """The first goroutine's innermost frame that is the app's own code."""
    goroutine: int | None = None
    for i, line in enumerate(lines):
        header = GOROUTINE_HEADER.match(line)
        if header is None:
            continue
        goroutine = int(header.group(1))
        j = i + 1
        while j + 1 < len(lines) and lines[j] and not lines[j].startswith("goroutine "):
            function = lines[j]
            location = FRAME_LOCATION.match(lines[j + 1])
            if location is not None:
                name = function.split("(", 1)[0]
                if not name.startswith(RUNTIME_PACKAGES) and not name.startswith("panic"):
                    return goroutine, name, f"{location.group(1)}:{location.group(2)}"
                j += 2
            else:
                j += 1
        return goroutine, None, None
    return goroutine, None, None

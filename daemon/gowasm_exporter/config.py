"""Command-line flags, each also readable from a ``GOWASM_EXPORTER_*`` environment variable.

A flag given on the command line wins over its variable. Repeatable flags (``--cdp``, ``--open``,
``--include``, ``--exclude``) take a whitespace-separated list from their variable.

Secrets: the API token is better given through ``GOWASM_EXPORTER_API_TOKEN`` or
``--api-token-file`` than ``--api-token``, since every local user can read a command line.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ENV_PREFIX = "GOWASM_EXPORTER_"
DEFAULT_LISTEN = "127.0.0.1:9464"


@dataclass(frozen=True, slots=True)
class Config:
    cdp: tuple[str, ...]
    chrome: str | None
    open: tuple[str, ...]
    include: tuple[re.Pattern[str], ...]
    exclude: tuple[re.Pattern[str], ...]
    host: str
    port: int
    poll_interval: float
    command_timeout: float
    max_label_values: int
    panic_history: int
    leak_sites: int
    log_level: str
    call_timing_sample: int = 16  # every Nth callback of an instance is timed for the histogram
    push_poll_interval: float | None = None  # push mode: pages push snapshots, polled this rarely
    api_token: str | None = None  # bearer token required by /api/* and / (None: open)
    reload_after_exit: float | None = None  # seconds; None: kept-open pages are not reloaded
    poll_on_scrape: bool = False  # poll once per scrape period, just before the scrape


def _env_name(dest: str) -> str:
    return ENV_PREFIX + dest.upper()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gowasm-exporter",
        description="Watch Go WebAssembly programs in Chromium pages over CDP; export Prometheus metrics.",
        epilog=f"Every flag can also be set through {ENV_PREFIX}<FLAG> (e.g. {ENV_PREFIX}CDP, {ENV_PREFIX}LISTEN).",
    )
    p.add_argument(
        "--cdp",
        action="append",
        metavar="URL",
        help="browser DevTools endpoint (http://host:port or ws://...); repeatable. "
        "Without it an embedded headless Chromium is launched.",
    )
    p.add_argument("--chrome", metavar="PATH", help="Chromium executable for the embedded browser")
    p.add_argument(
        "--open", action="append", metavar="URL", help="page to open and keep open in the browser(s); repeatable"
    )
    p.add_argument("--include", action="append", metavar="REGEX", help="report only pages whose URL matches")
    p.add_argument("--exclude", action="append", metavar="REGEX", help="do not report pages whose URL matches")
    p.add_argument("--listen", metavar="HOST:PORT", help=f"HTTP address (default {DEFAULT_LISTEN})")
    p.add_argument("--poll-interval", type=float, metavar="SECONDS", help="gauge polling period (default 1)")
    p.add_argument("--command-timeout", type=float, metavar="SECONDS", help="per CDP command (default 10)")
    p.add_argument(
        "--max-label-values",
        type=int,
        metavar="N",
        help="distinct page/module label values before folding into 'other' (default 100)",
    )
    p.add_argument("--panic-history", type=int, metavar="N", help="panics kept for /api/panics (default 100)")
    p.add_argument(
        "--leak-sites",
        type=int,
        metavar="K",
        help="creation sites exported per page/module in gowasm_funcs_live_by_site (default 10)",
    )
    p.add_argument(
        "--call-timing-sample",
        type=int,
        metavar="N",
        help="time every Nth JS->Go call of an instance for gowasm_func_call_duration_seconds and "
        "gowasm_func_calls_long_total, each timed call counting N times (default 16; 1 times every call, "
        "exact); 0 turns call timing off (no histogram, no long calls), see docs/performance.md",
    )
    p.add_argument(
        "--push",
        action="store_true",
        default=None,
        help="push mode: each page sends its snapshot --poll-interval after its Go program changed "
        "something (idle pages send nothing), and is polled only every --push-poll-interval",
    )
    p.add_argument(
        "--push-poll-interval",
        type=float,
        metavar="SECONDS",
        help="in push mode, how often pages are still polled (page metrics, liveness; default 10)",
    )
    p.add_argument(
        "--poll-on-scrape",
        action="store_true",
        default=None,
        help="poll each page once per Prometheus scrape period, just before the next scrape is due "
        "(the period is learnt from /metrics requests; until then, and when scrapes stop, every "
        "--poll-interval); events are pushed either way",
    )
    p.add_argument("--log-level", choices=("debug", "info", "warning", "error"), help="default info")
    p.add_argument(
        "--api-token",
        metavar="TOKEN",
        help=f"require 'Authorization: Bearer TOKEN' on /api/* and / (/metrics and /healthz stay open); "
        f"prefer {ENV_PREFIX}API_TOKEN or --api-token-file, a command line is visible to local users",
    )
    p.add_argument("--api-token-file", metavar="PATH", help="read the API token from this file")
    p.add_argument(
        "--reload-after-exit",
        metavar="DURATION",
        help="reload an --open page this long after its Go program exited (e.g. 30s, 5m, 1h; default: never)",
    )
    return p


MAX_TIMING_SAMPLE = 1 << 20  # the shim's own bound (instrument/src/timing.js)
DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
TOKEN = re.compile(r"^[\x21-\x7e]+$")  # what fits in an Authorization header as is


def parse_duration(text: str) -> float:
    """``30s``, ``5m``, ``1h``, ``250ms`` or a plain number of seconds."""
    match = DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (expected e.g. 30s, 5m, 1h, 250ms)")
    return float(match.group(1)) * DURATION_UNITS[match.group(2)]


def parse_config(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    parser = build_parser()
    args = parser.parse_args(argv)
    env = os.environ if env is None else env

    def value(dest: str, default: str | None = None) -> str | None:
        given = getattr(args, dest)
        if given is not None:
            return given
        return env.get(_env_name(dest), default)

    def flag(dest: str) -> bool:
        """A switch: on the command line, or ``1``/``true``/``yes``/``on`` in the environment."""
        if getattr(args, dest):
            return True
        raw = env.get(_env_name(dest), "").strip().lower()
        if raw in ("", "0", "false", "no", "off"):
            return False
        if raw in ("1", "true", "yes", "on"):
            return True
        parser.error(f"{_env_name(dest)}: expected 1/0, true/false, yes/no or on/off, not {raw!r}")

    def many(dest: str) -> tuple[str, ...]:
        given = getattr(args, dest)
        if given:
            return tuple(given)
        return tuple(env.get(_env_name(dest), "").split())

    def number(dest: str, kind: type, default: float, lo: float) -> float:
        raw = value(dest)
        try:
            result = default if raw is None else kind(raw)
        except ValueError:
            parser.error(f"--{dest.replace('_', '-')}: not a number: {raw!r}")
        if result < lo:
            parser.error(f"--{dest.replace('_', '-')} must be at least {lo}")
        return result

    def patterns(dest: str) -> tuple[re.Pattern[str], ...]:
        out = []
        for raw in many(dest):
            try:
                out.append(re.compile(raw))
            except re.error as exc:
                parser.error(f"--{dest} {raw!r}: {exc}")
        return tuple(out)

    def duration(dest: str) -> float | None:
        raw = value(dest)
        if raw is None or raw == "":
            return None
        try:
            return parse_duration(raw)
        except ValueError as exc:
            parser.error(f"--{dest.replace('_', '-')}: {exc}")

    def api_token() -> str | None:
        token = value("api_token")
        path = value("api_token_file")
        if path:
            try:
                with open(path, encoding="utf-8") as file:
                    token = file.read().strip()
            except OSError as exc:
                parser.error(f"--api-token-file: {exc}")
            if not token:
                parser.error(f"--api-token-file {path}: the file is empty")  # fail closed, not open
        if token is not None and not TOKEN.match(token):
            parser.error("--api-token: expected printable ASCII without spaces")
        return token or None

    listen = value("listen", DEFAULT_LISTEN) or DEFAULT_LISTEN
    host, sep, port_text = listen.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        parser.error(f"--listen {listen!r}: expected HOST:PORT")
    if int(number("call_timing_sample", int, 16, 0)) > MAX_TIMING_SAMPLE:
        parser.error(f"--call-timing-sample must be at most {MAX_TIMING_SAMPLE}")
    return Config(
        cdp=many("cdp"),
        chrome=value("chrome"),
        open=many("open"),
        include=patterns("include"),
        exclude=patterns("exclude"),
        host=host.strip("[]") or "127.0.0.1",
        port=int(port_text),
        poll_interval=number("poll_interval", float, 1.0, 0.05),
        command_timeout=number("command_timeout", float, 10.0, 0.1),
        max_label_values=int(number("max_label_values", int, 100, 1)),
        panic_history=int(number("panic_history", int, 100, 1)),
        leak_sites=int(number("leak_sites", int, 10, 1)),
        call_timing_sample=int(number("call_timing_sample", int, 16, 0)),
        push_poll_interval=number("push_poll_interval", float, 10.0, 0.05) if flag("push") else None,
        poll_on_scrape=flag("poll_on_scrape"),
        log_level=value("log_level", "info") or "info",
        api_token=api_token(),
        reload_after_exit=duration("reload_after_exit"),
    )

"""Where the daemon's CPU goes with many pages: py-spy on the exporter, in steady state.

Starts the exporter (subprocess, ``--cdp``, default settings) on one headless Chromium, opens N
tabs of the callbacks bench app, lets the polls settle, then samples the exporter with py-spy for
a while (``py-spy record``; install it with ``.venv/bin/pip install py-spy``) and prints the
functions with the most samples, by own time and including callees. The raw profile (speedscope
format) is kept.

Run: ``.venv/bin/python bench/profile_daemon.py [--pages 100] [--seconds 30] [--push] [--out FILE]``
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import harness


def top_frames(profile: dict[str, Any], limit: int) -> None:
    frames = profile["shared"]["frames"]
    own: collections.Counter[int] = collections.Counter()
    total: collections.Counter[int] = collections.Counter()
    count = 0
    for prof in profile["profiles"]:
        for stack, weight in zip(prof["samples"], prof["weights"], strict=False):
            count += weight
            if stack:
                own[stack[-1]] += weight
            for frame in set(stack):
                total[frame] += weight

    def label(i: int) -> str:
        f = frames[i]
        return f"{f['name']} ({Path(f.get('file', '?')).name}:{f.get('line', '?')})"

    print(f"\n  {count} samples; top {limit} by own time:")
    for frame, weight in own.most_common(limit):
        print(f"    {weight / count * 100:5.1f}%  {label(frame)}")
    print(f"\n  top {limit} including callees:")
    for frame, weight in total.most_common(limit):
        print(f"    {weight / count * 100:5.1f}%  {label(frame)}")


async def run(args: argparse.Namespace) -> None:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        raise SystemExit("py-spy is missing: .venv/bin/pip install py-spy")
    go = harness.ensure_go(args.go)
    site = harness.BenchSite([go], ["callbacks"])
    with site.serving():
        async with harness.chromium() as (endpoint, chrome):
            harness.print_header("daemon profile", harness.machine_report(chrome=chrome, go=[go]), vars(args))
            client = await harness.CDPClient.connect(endpoint)
            pages: list[harness.Page] = []
            try:
                flags = (*(("--push",) if args.push else ()), *(("--poll-on-scrape",) if args.poll_on_scrape else ()))
                async with harness.run_exporter("--cdp", endpoint, *flags) as exporter:
                    await harness.wait_browsers_up(exporter)
                    async with harness.scraping(exporter, args.scrape_every):
                        for _ in range(args.pages):
                            url = site.url(go, "callbacks", f"busy={args.busy}")
                            pages.append(await harness.open_app(client, url))
                        await asyncio.sleep(5 + 3 * args.scrape_every)
                        spy = await asyncio.create_subprocess_exec(
                            py_spy, "record", "--pid", str(exporter.proc.pid), "--duration", str(args.seconds),
                            "--rate", "200", "--format", "speedscope", "--output", args.out, "--nonblocking",
                            stdout=asyncio.subprocess.DEVNULL,
                        )  # fmt: skip
                        await spy.wait()
            finally:
                for page in pages:
                    await page.close()
                await client.close()
    top_frames(json.loads(Path(args.out).read_text()), args.top)
    print(f"\n  profile written to {args.out} (speedscope format)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pages", type=int, default=100)
    p.add_argument("--seconds", type=int, default=30)
    p.add_argument("--busy", type=int, default=100)
    p.add_argument("--push", action="store_true", help="profile the exporter in push mode")
    p.add_argument("--poll-on-scrape", action="store_true", help="profile the exporter with --poll-on-scrape")
    p.add_argument("--scrape-every", type=float, default=0, help="scrape /metrics every S seconds (default: never)")
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--go", default="1.27.3")
    p.add_argument("--out", default="/tmp/gowasm-daemon.speedscope.json")
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()

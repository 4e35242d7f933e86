"""Generate the Grafana dashboards in ``grafana/dashboards/`` from plain Python dicts.

The JSON files are committed because Grafana's file provisioning loads them as they are; this
script is their source. Edit it, then run ``python grafana/build_dashboards.py`` (``--check`` exits
1 when the committed files are out of date; tests/test_ops_grafana.py runs the same comparison).

Why generated: about forty panels share the same datasource reference, label selector and legend
conventions, and hand-edited dashboard JSON drifts (stray ``__inputs``, hard-coded datasource uids,
duplicate panel ids). Output is stable: sorted keys, ids and grid positions assigned in order.

Every panel queries the ``datasource`` template variable, and every Go-instance query is filtered
by the ``instance``, ``page`` and ``module`` variables. Some metrics are the exporter's contract
and not implemented yet (``gowasm_funcs_live``, ``gowasm_funcs_released_total``, the call-duration
histogram, ...): their panels stay empty until the exporter serves them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

Json = dict[str, Any]

OUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE_UID = "gowasm-prometheus"  # grafana/provisioning/datasources/prometheus.yml
DS: Json = {"type": "prometheus", "uid": "${datasource}"}
# Label filters of Go-instance series (labels page, module) and of page series (label page).
SEL = 'instance=~"$instance", page=~"$page", module=~"$module"'
PAGE_SEL = 'instance=~"$instance", page=~"$page"'
BY = "page, module"
LEGEND = "{{page}} {{module}}"
FULL_WIDTH = 24


# -- targets and panels -------------------------------------------------------------------------


def target(expr: str, legend: str = LEGEND, *, instant: bool = False, fmt: str = "time_series") -> Json:
    """One Prometheus query; refIds are assigned by the panel."""
    return {
        "datasource": DS,
        "editorMode": "code",
        "expr": expr,
        "format": fmt,
        "instant": instant,
        "legendFormat": legend,
        "range": not instant,
    }


def _panel(kind: str, title: str, description: str, targets: list[Json], *, w: int, h: int) -> Json:
    for ref, t in zip("ABCDEFGHIJ", targets, strict=False):
        t["refId"] = ref
    return {
        "datasource": DS,
        "description": description,
        "gridPos": {"h": h, "w": w},
        "targets": targets,
        "title": title,
        "type": kind,
    }


def timeseries(
    title: str,
    description: str,
    targets: list[Json],
    *,
    unit: str = "short",
    steps: bool = False,
    w: int = 12,
    h: int = 8,
) -> Json:
    """A time series panel; ``steps`` draws cumulative counters as staircases."""
    panel = _panel("timeseries", title, description, targets, w=w, h=h)
    panel["fieldConfig"] = {
        "defaults": {
            "custom": {
                "drawStyle": "line",
                "fillOpacity": 10,
                "lineInterpolation": "stepAfter" if steps else "linear",
                "lineWidth": 1,
                "showPoints": "never",
                "spanNulls": False,
            },
            "unit": unit,
        },
        "overrides": [],
    }
    panel["options"] = {
        "legend": {"calcs": ["lastNotNull", "max"], "displayMode": "table", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "desc"},
    }
    return panel


def heatmap(title: str, description: str, expr: str, *, unit: str, w: int = 12, h: int = 8) -> Json:
    """A heatmap of a Prometheus histogram's buckets (already bucketed: no calculation)."""
    panel = _panel("heatmap", title, description, [target(expr, "{{le}}", fmt="heatmap")], w=w, h=h)
    panel["options"] = {
        "calculate": False,
        "cellGap": 1,
        "color": {"exponent": 0.5, "mode": "scheme", "scale": "exponential", "scheme": "Oranges", "steps": 64},
        "legend": {"show": True},
        "tooltip": {"mode": "single", "yHistogram": True},
        "yAxis": {"axisPlacement": "left", "unit": unit},
    }
    return panel


def state_timeline(title: str, description: str, targets: list[Json], *, w: int = 12, h: int = 8) -> Json:
    """Up/down over time, for 0/1 gauges."""
    panel = _panel("state-timeline", title, description, targets, w=w, h=h)
    panel["fieldConfig"] = {
        "defaults": {
            "color": {"mode": "thresholds"},
            "mappings": [
                {
                    "options": {
                        "0": {"color": "red", "index": 0, "text": "down"},
                        "1": {"color": "green", "index": 1, "text": "up"},
                    },
                    "type": "value",
                }
            ],
            "thresholds": {
                "mode": "absolute",
                "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}],
            },
        },
        "overrides": [],
    }
    panel["options"] = {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False},
        "showValue": "never",
    }
    return panel


def bar_gauge(title: str, description: str, targets: list[Json], *, w: int = 12, h: int = 10) -> Json:
    """Current values side by side, largest first (top-k lists)."""
    panel = _panel("bargauge", title, description, targets, w=w, h=h)
    panel["fieldConfig"] = {"defaults": {"min": 0, "unit": "short"}, "overrides": []}
    panel["options"] = {
        "displayMode": "basic",
        "orientation": "horizontal",
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "showUnfilled": True,
    }
    return panel


def table(title: str, description: str, targets: list[Json], *, w: int = FULL_WIDTH, h: int = 6) -> Json:
    """Instant query results as rows (one per series), without the time and value columns."""
    panel = _panel("table", title, description, targets, w=w, h=h)
    panel["options"] = {"showHeader": True}
    panel["transformations"] = [
        {"id": "organize", "options": {"excludeByName": {"Time": True, "Value": True, "__name__": True}}}
    ]
    return panel


def row(title: str) -> Json:
    return {"collapsed": False, "gridPos": {"h": 1, "w": FULL_WIDTH}, "panels": [], "title": title, "type": "row"}


def layout(panels: list[Json]) -> list[Json]:
    """Assign ids and grid positions: left to right, wrapping at the grid's 24 columns."""
    x = y = row_height = 0
    for pid, panel in enumerate(panels, start=1):
        pos = panel["gridPos"]
        if x + pos["w"] > FULL_WIDTH or panel["type"] == "row":
            y += row_height
            x = row_height = 0
        pos["x"], pos["y"] = x, y
        panel["id"] = pid
        x += pos["w"]
        row_height = max(row_height, pos["h"])
    return panels


# -- dashboards ---------------------------------------------------------------------------------


def variables() -> list[Json]:
    """The datasource picker and the exporter, page and module filters (multi-value, All = .*)."""

    def query_var(name: str, label: str, query: str) -> Json:
        return {
            "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "datasource": DS,
            "definition": query,
            "hide": 0,
            "includeAll": True,
            "label": label,
            "multi": True,
            "name": name,
            "options": [],
            "query": query,
            "refresh": 2,  # on time range change: pages come and go
            "regex": "",
            "sort": 1,
            "type": "query",
        }

    return [
        {
            "current": {"selected": False, "text": "Prometheus", "value": DATASOURCE_UID},
            "hide": 0,
            "includeAll": False,
            "label": "Data source",
            "multi": False,
            "name": "datasource",
            "options": [],
            "query": "prometheus",
            "refresh": 1,
            "regex": "",
            "type": "datasource",
        },
        query_var("instance", "Exporter", "label_values(gowasm_exporter_browser_up, instance)"),
        query_var("page", "Page", 'label_values(gowasm_funcs_created_total{instance=~"$instance"}, page)'),
        query_var("module", "Module", f"label_values(gowasm_funcs_created_total{{{PAGE_SEL}}}, module)"),
    ]


def annotations() -> list[Json]:
    """Grafana's own annotations, and a marker at every instance-ending panic."""
    return [
        {
            "builtIn": 1,
            "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True,
            "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts",
            "type": "dashboard",
        },
        {
            "datasource": DS,
            "enable": True,
            # A label set's first panic creates its counter at 1, which increase() cannot see.
            "expr": (
                f"increase(gowasm_panics_total{{{SEL}}}[2m]) > 0"
                f" or (gowasm_panics_total{{{SEL}}} unless gowasm_panics_total{{{SEL}}} offset 2m)"
            ),
            "iconColor": "red",
            "name": "Go panics",
            "step": "1m",
            "textFormat": "{{page}} {{module}}",
            "titleFormat": "Go {{kind}}",
        },
    ]


def dashboard(uid: str, title: str, description: str, panels: list[Json]) -> Json:
    return {
        "annotations": {"list": annotations()},
        "description": description,
        "editable": True,
        "graphTooltip": 1,  # shared crosshair: line up a leak with the panic that follows it
        "links": [
            {
                "asDropdown": False,
                "includeVars": True,
                "keepTime": True,
                "tags": ["gowasm"],
                "title": "gowasm dashboards",
                "type": "dashboards",
            }
        ],
        "panels": layout(panels),
        "refresh": "30s",
        "schemaVersion": 39,
        "tags": ["gowasm"],
        "templating": {"list": variables()},
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "browser",
        "title": title,
        "uid": uid,
        "version": 1,
    }


def rate(metric: str, sel: str = SEL, by: str = BY) -> str:
    return f"sum by ({by}) (rate({metric}{{{sel}}}[$__rate_interval]))"


def gauge(metric: str, sel: str = SEL, by: str = BY) -> str:
    return f"sum by ({by}) ({metric}{{{sel}}})"


def slope_per_hour(metric: str, sel: str = SEL, by: str = BY) -> str:
    return f"sum by ({by}) (deriv({metric}{{{sel}}}[1h])) * 3600"


def floor_1h(metric: str, sel: str = SEL, by: str = BY) -> str:
    return f"sum by ({by}) (min_over_time({metric}{{{sel}}}[1h]))"


def overview() -> Json:
    durations = f"gowasm_func_call_duration_seconds_bucket{{{SEL}}}[$__rate_interval]"
    panels = [
        row("Exporter and instances"),
        state_timeline(
            "Browser connection",
            "1 while the exporter is connected to the browser's DevTools endpoint. While down, no page in "
            "that browser is watched (alert GowasmBrowserDown).",
            [target('gowasm_exporter_browser_up{instance=~"$instance"}', "{{instance}} {{browser}}")],
            w=8,
        ),
        timeseries(
            "Running Go instances",
            "Go programs running per page and module. A drop to 0 without a reload is an exit or a panic.",
            [target(gauge("gowasm_instances"))],
            w=8,
        ),
        timeseries(
            "Watched targets",
            "Attached, reported targets per browser: pages, iframes (out-of-process ones, and same-process "
            "ones running Go) and dedicated workers.",
            [target('gowasm_exporter_targets{instance=~"$instance"}', "{{instance}} {{browser}} {{type}}")],
            w=8,
        ),
        row("Callbacks (js.FuncOf)"),
        timeseries(
            "Live funcs",
            "js.Funcs created and not released, in running instances. Each pins a Go closure until "
            "Release(): a line that only goes up is a callback leak.",
            [target(gauge("gowasm_funcs_live"))],
            w=8,
        ),
        timeseries(
            "Live funcs slope (per hour, over 1 h)",
            "deriv() of live funcs over the last hour, per hour. Hovering above 0 for hours is a leak; "
            "a GC-like sawtooth averages out to 0.",
            [target(slope_per_hour("gowasm_funcs_live"))],
            w=8,
        ),
        timeseries(
            "Funcs created vs released",
            "js.FuncOf registrations and Release() calls per second. Created steadily above released is "
            "the live count growing.",
            [
                target(rate("gowasm_funcs_created_total"), "created " + LEGEND),
                target(rate("gowasm_funcs_released_total"), "released " + LEGEND),
            ],
            unit="ops",
            w=8,
        ),
        timeseries(
            "Callback calls",
            "JS->Go callback invocations per second into running instances.",
            [target(rate("gowasm_func_calls_total"))],
            unit="ops",
        ),
        heatmap(
            "Callback duration",
            "Time callbacks spend in Go; the page's event loop is blocked meanwhile. Long calls make the page janky.",
            f"sum by (le) (rate({durations}))",
            unit="s",
            w=6,
        ),
        timeseries(
            "Callback duration p99",
            "99th percentile of callback duration per page and module.",
            [target(f"histogram_quantile(0.99, sum by ({BY}, le) (rate({durations})))")],
            unit="s",
            w=6,
        ),
        row("Memory and references"),
        timeseries(
            "js.Value refs live",
            "JS values Go holds (wasm_exec.js' ref table). They drop only when Go's GC finalizes values, so "
            "a sawtooth is normal; a rising floor is a leak.",
            [target(gauge("gowasm_js_refs_live"))],
            w=8,
        ),
        timeseries(
            "Wasm memory",
            "WebAssembly linear memory. It never shrinks: steps are normal, steady growth for hours is not. "
            "Go dies with 'out of memory' near 4 GiB.",
            [target(gauge("gowasm_memory_bytes"))],
            unit="bytes",
            w=8,
        ),
        timeseries(
            "JS heap",
            "The page's V8 heap, used and total. JS objects Go pins through refs or funcs stay here.",
            [
                target(gauge("gowasm_page_js_heap_used_bytes", PAGE_SEL, "page"), "used {{page}}"),
                target(gauge("gowasm_page_js_heap_total_bytes", PAGE_SEL, "page"), "total {{page}}"),
            ],
            unit="bytes",
            w=8,
        ),
        timeseries(
            "Goroutines",
            "Goroutines per instance. Growth with the live funcs often means callbacks that block.",
            [target(gauge("gowasm_goroutines"))],
            w=8,
        ),
        timeseries(
            "Go GC cycles",
            "Go garbage collections per second. js.Value refs and funcs wrappers are finalized only by them.",
            [target(rate("gowasm_gc_cycles_total"))],
            unit="ops",
            w=8,
        ),
        timeseries(
            "DOM nodes and event listeners",
            "The page's DOM nodes and JS event listeners: a listener added per event and never removed "
            "grows with the live funcs.",
            [
                target(gauge("gowasm_page_dom_nodes", PAGE_SEL, "page"), "DOM nodes {{page}}"),
                target(gauge("gowasm_page_js_event_listeners", PAGE_SEL, "page"), "listeners {{page}}"),
            ],
            w=8,
        ),
        row("Panics and exits"),
        timeseries(
            "Instance-ending panics (since exporter start)",
            "Unrecovered panics and fatal errors that killed the Go instance, cumulative. Details, message "
            "and stack at the exporter's /api/panics (alert GowasmInstancePanicked).",
            [target(gauge("gowasm_panics_total", SEL, f"{BY}, kind"), LEGEND + " {{kind}}")],
            steps=True,
            w=8,
        ),
        timeseries(
            "Recovered panics",
            "Panics recovered inside Go, per second: not fatal, but often a bug being papered over.",
            [target(rate("gowasm_recovered_panics_total"))],
            unit="ops",
            w=8,
        ),
        timeseries(
            "Exits by code (since exporter start)",
            "Instance exits by exit code, cumulative. A panic is also an exit with code 2.",
            [target(gauge("gowasm_exits_total", SEL, f"{BY}, code"), LEGEND + " code {{code}}")],
            steps=True,
            w=8,
        ),
        timeseries(
            "Calls after exit and after release",
            "Calls into an exited instance (each throws 'Go program has already exited') and calls of "
            "released funcs ('call to released function'), per second.",
            [
                target(rate("gowasm_calls_after_exit_total"), "after exit " + LEGEND),
                target(rate("gowasm_calls_after_release_total"), "after release " + LEGEND),
            ],
            unit="ops",
        ),
        timeseries(
            "Rejected page events",
            "Payloads from pages the exporter dropped (invalid, rate-limited, bad snapshots), per second. "
            "Non-zero means a page misbehaves or the shim and exporter versions differ.",
            [
                target(
                    'sum by (instance, reason) (rate(gowasm_exporter_rejected_events_total{instance=~"$instance"}'
                    "[$__rate_interval]))",
                    "{{instance}} {{reason}}",
                )
            ],
            unit="ops",
        ),
    ]
    return dashboard(
        "gowasm-overview",
        "gowasm / overview",
        "Go WebAssembly programs in Chromium pages, per page and module: callbacks, references, memory, "
        "panics. Data from gowasm-exporter.",
        panels,
    )


def leaks() -> Json:
    panels = [
        row("Alerts"),
        table(
            "gowasm alerts (pending and firing)",
            "Leak alerts go pending after two hours of sustained growth and fire one hour later. See "
            "docs/operations.md for what each one means.",
            [target('ALERTS{alertname=~"Gowasm.*"}', instant=True, fmt="table")],
        ),
        row("Slopes: growth per hour, over the last hour"),
        timeseries(
            "Live funcs slope",
            "deriv(gowasm_funcs_live[1h]) per hour. Above 0 for hours: a callback leak.",
            [target(slope_per_hour("gowasm_funcs_live"))],
            w=6,
        ),
        timeseries(
            "js.Value refs slope",
            "deriv(gowasm_js_refs_live[1h]) per hour. GC makes it swing around 0; above 0 for hours: a reference leak.",
            [target(slope_per_hour("gowasm_js_refs_live"))],
            w=6,
        ),
        timeseries(
            "Wasm memory slope",
            "deriv(gowasm_memory_bytes[1h]) in bytes per hour. Memory never shrinks: growth that does not "
            "stop ends in 'out of memory' near 4 GiB.",
            [target(slope_per_hour("gowasm_memory_bytes"))],
            unit="bytes",
            w=6,
        ),
        timeseries(
            "JS heap slope",
            "deriv(gowasm_page_js_heap_used_bytes[1h]) in bytes per hour, per page.",
            [target(slope_per_hour("gowasm_page_js_heap_used_bytes", PAGE_SEL, "page"), "{{page}}")],
            unit="bytes",
            w=6,
        ),
        row("Floors: minimum over the last hour (what survives GC)"),
        timeseries(
            "Live funcs floor",
            "The leak alerts compare these hourly floors: a sawtooth back to baseline keeps a flat floor, a "
            "leak raises it hour after hour.",
            [target(floor_1h("gowasm_funcs_live"))],
            w=8,
        ),
        timeseries(
            "js.Value refs floor",
            "Hourly floor of the refs Go holds: what remains after Go's GC has finalized values.",
            [target(floor_1h("gowasm_js_refs_live"))],
            w=8,
        ),
        timeseries(
            "JS heap floor",
            "Hourly floor of the JS heap used: what remains after V8's GC.",
            [target(floor_1h("gowasm_page_js_heap_used_bytes", PAGE_SEL, "page"), "{{page}}")],
            unit="bytes",
            w=8,
        ),
        row("Where the funcs are registered"),
        bar_gauge(
            "Top leak sites (live funcs by registering site)",
            "The 10 js.FuncOf call sites holding the most live funcs now. Fix the top one first: release "
            "the Func when its JS owner goes away.",
            [
                target(
                    f"topk(10, sum by ({BY}, site) (gowasm_funcs_live_by_site{{{SEL}}}))",
                    "{{site}} ({{page}})",
                    instant=True,
                )
            ],
        ),
        timeseries(
            "Top leak sites over time",
            "Live funcs of the 10 largest registering sites: the site whose line keeps rising is the leak.",
            [target(f"topk(10, sum by ({BY}, site) (gowasm_funcs_live_by_site{{{SEL}}}))", "{{site}} ({{page}})")],
            h=10,
        ),
    ]
    return dashboard(
        "gowasm-leaks",
        "gowasm / leak hunting",
        "Is it a leak, and where: growth slopes, hourly floors (what the alerts compare) and the js.FuncOf "
        "sites holding the most live funcs.",
        panels,
    )


def dashboards() -> dict[str, Json]:
    """File name in grafana/dashboards/ -> dashboard."""
    return {"gowasm-overview.json": overview(), "gowasm-leaks.json": leaks()}


def render(board: Json) -> str:
    return json.dumps(board, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed files are out of date")
    args = parser.parse_args(argv)
    stale = []
    for name, board in dashboards().items():
        path = OUT / name
        text = render(board)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(f"out of date: {', '.join(stale)} (run python grafana/build_dashboards.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

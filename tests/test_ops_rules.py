"""The Prometheus bundle in prometheus/: config and rules accepted by promtool, the rules' unit tests
passing, and the must-not-fire fixtures shown to be hard cases (a naive rule fires on them).

promtool comes from Debian's ``prometheus`` package (scripts/bootstrap installs it); without it these
tests skip, saying so.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PROMETHEUS = REPO / "prometheus"
RULES = PROMETHEUS / "rules" / "gowasm.rules.yml"
UNIT_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
QUIET_TESTS = PROMETHEUS / "tests" / "leaks_quiet_test.yml"
OPERATIONS_DOC = REPO / "docs" / "operations.md"
PROMTOOL = shutil.which("promtool")

needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not on PATH (Debian package 'prometheus'; scripts/bootstrap installs it)"
)


def promtool(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(RULES)["groups"] for rule in group["rules"]]


def alert_names() -> set[str]:
    return {rule["alert"] for rule in rules() if "alert" in rule}


@needs_promtool
def test_rules_pass_promtool_check() -> None:
    """promtool accepts every rule file (syntax, PromQL, templates)."""
    files = sorted(str(p) for p in (PROMETHEUS / "rules").glob("*.yml"))
    assert files
    result = promtool("check", "rules", *files)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_prometheus_config_passes_promtool_check() -> None:
    """promtool accepts prometheus.yml, including the rule files its rule_files glob loads."""
    result = promtool("check", "config", "prometheus.yml", cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "gowasm.rules.yml" in result.stdout, "rule_files did not pick up the rules"


@needs_promtool
@pytest.mark.parametrize("test_file", UNIT_TESTS, ids=lambda p: p.name)
def test_rule_unit_tests_pass(test_file: Path) -> None:
    """Each promtool unit-test file passes: alerts fire on leaks and failures, stay quiet otherwise."""
    result = promtool("test", "rules", test_file.name, cwd=test_file.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_unit_tested_both_ways() -> None:
    """Every alert is expected to fire somewhere, and every leak alert is held quiet on the hard cases."""
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in UNIT_TESTS:
        for group in load_yaml(path)["tests"]:
            for case in group.get("alert_rule_test", []):
                (fired if case.get("exp_alerts") else quiet).add(case["alertname"])
    assert alert_names() <= fired
    leak_alerts = {r["alert"] for r in rules() if "alert" in r and "sustained_growth" in r["expr"]}
    assert leak_alerts, "no leak alert reads a sustained_growth recording rule"
    quiet_file = {case["alertname"] for g in load_yaml(QUIET_TESTS)["tests"] for case in g["alert_rule_test"]}
    assert leak_alerts <= quiet_file


def test_alerts_say_what_to_do() -> None:
    """Every alert has a severity, a summary, a description and a runbook anchor that exists in the docs."""
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in OPERATIONS_DOC.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    }
    for rule in rules():
        if "alert" not in rule:
            continue
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        notes = rule["annotations"]
        assert notes["summary"].strip() and notes["description"].strip(), name
        doc, _, anchor = notes["runbook"].partition("#")
        assert doc == "docs/operations.md" and anchor in anchors, f"{name}: no heading for {notes['runbook']}"


def test_leak_alerts_have_two_severities() -> None:
    """Each leak alert exists as a warning and as a critical rule, like node-mixin's filesystem alerts."""
    severities: dict[str, set[str]] = {}
    for rule in rules():
        if "alert" in rule and "sustained_growth" in rule["expr"]:
            severities.setdefault(rule["alert"], set()).add(rule["labels"]["severity"])
            assert "predict_linear(" in rule["expr"] and rule["for"] == "1h", rule["alert"]
    assert len(severities) == 4
    assert all(s == {"warning", "critical"} for s in severities.values()), severities


def _quiet_groups() -> list[dict[str, Any]]:
    return load_yaml(QUIET_TESTS)["tests"]


@needs_promtool
@pytest.mark.parametrize("group", _quiet_groups(), ids=lambda g: g["name"])
def test_quiet_case_fires_without_the_sustained_growth_condition(group: dict[str, Any], tmp_path: Path) -> None:
    """With the sustained-growth condition removed, the guard and projection alone fire on this fixture."""
    ablated = load_yaml(RULES)
    for rule_group in ablated["groups"]:
        for rule in rule_group["rules"]:
            record = rule.get("record", "")
            if record.endswith(":sustained_growth"):
                rule["expr"] = record.split(":")[1]  # the gauge itself: "growing" whenever it exists
    (tmp_path / "ablated.rules.yml").write_text(yaml.safe_dump(ablated), encoding="utf-8")
    test = {"rule_files": ["ablated.rules.yml"], "evaluation_interval": "1m", "tests": [group]}
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test, width=1_000_000), encoding="utf-8")
    result = promtool("test", "rules", "test.yml", cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"{group['name']!r} stays quiet even without the growth condition: too easy"
    assert "Labels:{alertname=" in output, output  # it failed because an alert fired, not for another reason


def test_alertmanager_config_is_consistent() -> None:
    """alertmanager.yml routes to a defined receiver and inhibits by alert names and severities that exist."""
    config = load_yaml(PROMETHEUS / "alertmanager.yml")
    receivers = {r["name"] for r in config["receivers"]}
    assert config["route"]["receiver"] in receivers
    known = {"alertname": alert_names(), "severity": {r["labels"]["severity"] for r in rules() if "alert" in r}}
    for inhibit in config["inhibit_rules"]:
        for matcher in inhibit["source_matchers"] + inhibit["target_matchers"]:
            label, _, value = (part.strip() for part in matcher.partition("="))
            assert value in known[label], matcher

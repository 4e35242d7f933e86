"""Flags of the long-running monitor: the API token and --reload-after-exit."""

from __future__ import annotations

from pathlib import Path

import pytest

from gowasm_exporter.config import parse_config, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30.0), ("5m", 300.0), ("1h", 3600.0), ("250ms", 0.25), ("1.5", 1.5), (" 2 m ", 120.0)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_reload_after_exit_defaults_to_never_and_reads_the_environment() -> None:
    assert parse_config([], env={}).reload_after_exit is None
    assert parse_config([], env={"GOWASM_EXPORTER_RELOAD_AFTER_EXIT": "10m"}).reload_after_exit == 600.0
    assert parse_config(["--reload-after-exit", "2s"], env={}).reload_after_exit == 2.0


def test_api_token_from_flag_environment_or_file(tmp_path: Path) -> None:
    """The token comes from the flag, the environment, or a file (trailing newline dropped)."""
    assert parse_config([], env={}).api_token is None
    assert parse_config([], env={"GOWASM_EXPORTER_API_TOKEN": "from-env"}).api_token == "from-env"
    assert parse_config(["--api-token", "from-flag"], env={"GOWASM_EXPORTER_API_TOKEN": "x"}).api_token == "from-flag"
    secret = tmp_path / "token"
    secret.write_text("from-file\n")
    assert parse_config(["--api-token-file", str(secret)], env={}).api_token == "from-file"


@pytest.mark.parametrize(
    "argv",
    [["--reload-after-exit", "soon"], ["--reload-after-exit", "-1s"], ["--api-token", "has space"]],
)
def test_bad_values_exit_with_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_config(argv, env={})
    assert info.value.code == 2
    assert "gowasm-exporter: error:" in capsys.readouterr().err


def test_an_empty_token_file_is_an_error_not_an_open_api(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Fail closed: a token file that is empty (or missing) stops the daemon."""
    empty = tmp_path / "token"
    empty.write_text("\n")
    for argv in (["--api-token-file", str(empty)], ["--api-token-file", str(tmp_path / "missing")]):
        with pytest.raises(SystemExit):
            parse_config(argv, env={})
    assert "--api-token-file" in capsys.readouterr().err

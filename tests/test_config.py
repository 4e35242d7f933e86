"""Flags and their GOWASM_EXPORTER_* environment variables."""

from __future__ import annotations

import pytest

from gowasm_exporter.config import parse_config


def test_defaults() -> None:
    config = parse_config([], env={})
    assert (config.host, config.port, config.cdp, config.poll_interval) == ("127.0.0.1", 9464, (), 1.0)
    assert config.call_timing_sample == 16
    assert parse_config([], env={"GOWASM_EXPORTER_CALL_TIMING_SAMPLE": "1"}).call_timing_sample == 1


def test_environment_and_precedence() -> None:
    """Variables fill in; a flag on the command line wins; lists split on whitespace."""
    env = {
        "GOWASM_EXPORTER_CDP": "http://a:9222 http://b:9222",
        "GOWASM_EXPORTER_LISTEN": "0.0.0.0:9000",
        "GOWASM_EXPORTER_INCLUDE": "app",
        "GOWASM_EXPORTER_POLL_INTERVAL": "0.5",
    }
    config = parse_config(["--listen", "127.0.0.1:9100"], env=env)
    assert config.cdp == ("http://a:9222", "http://b:9222")
    assert (config.host, config.port, config.poll_interval) == ("127.0.0.1", 9100, 0.5)
    assert [p.pattern for p in config.include] == ["app"]
    assert parse_config(["--cdp", "http://c:1", "--cdp", "http://d:2"], env=env).cdp == ("http://c:1", "http://d:2")


@pytest.mark.parametrize(
    "argv",
    [
        ["--listen", "nohost"],
        ["--listen", "h:99999"],
        ["--include", "("],
        ["--poll-interval", "0"],
        ["--call-timing-sample", "-1"],
        ["--call-timing-sample", str(2**20 + 1)],
    ],
)
def test_bad_flags_exit_with_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_config(argv, env={})
    assert info.value.code == 2
    assert "gowasm-exporter: error:" in capsys.readouterr().err


def test_bad_environment_value_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_config([], env={"GOWASM_EXPORTER_POLL_INTERVAL": "fast"})
    assert "not a number" in capsys.readouterr().err

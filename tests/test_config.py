"""Config errors stop start-up with one clear line (file, line, key path, expectation), exit 2."""

from __future__ import annotations

import socket
import subprocess

import pytest
from helpers import sscp_ops_cmd

from sscp_ops.config import ConfigError, load_config, parse_config


def run_exporter(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        sscp_ops_cmd("exporter", *args), capture_output=True, text=True, timeout=30
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("exporter:\n  deadlin: 5\n", "cfg.yml:2: exporter.deadlin: unknown key"),
        (
            "exporter:\n  deadline: soon\n",
            "cfg.yml:2: exporter.deadline: input should be a valid number",
        ),
        (
            "exporter:\n  deadline: -1\n",
            "cfg.yml:2: exporter.deadline: input should be greater than 0",
        ),
        (
            "targets:\n  redis:\n    - {name: c1}\n",
            "cfg.yml:3: targets.redis[0].address: required key is missing",
        ),
        (
            "targets:\n  redis:\n    - {name: c1, address: '127.0.0.1:6379', pasword_file: /x}\n",
            "cfg.yml:3: targets.redis[0].pasword_file: unknown key",
        ),
        ("exporter: [\n", "cfg.yml:2: YAML syntax error"),
        (
            "exporter:\n  deadline: 1\n  deadline: 2\n",
            "cfg.yml:3: YAML syntax error: duplicate key 'deadline'",
        ),
        ("- just\n- a list\n", "cfg.yml: expected a mapping of sections at the top level"),
        (
            "targets:\n  nginx:\n    - {name: a, url: 'http://x/'}\n    - {name: a, url: 'http://y/'}\n",
            "cfg.yml:2: targets.nginx: duplicate nginx target name 'a'",
        ),
    ],
)
def test_parse_config_errors_name_line_and_key_path(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "cfg.yml")
    message = str(info.value)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_valid_config_is_immutable() -> None:
    cfg = parse_config(
        "exporter: {deadline: 2, collectors: {host: false}}\n"
        "targets: {redis: [{name: c1, address: '127.0.0.1:6379', password_env: REDIS_PW}]}\n"
    )
    assert cfg.exporter.deadline == 2
    assert cfg.targets.redis[0].address == "127.0.0.1:6379"
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error type
        cfg.exporter.deadline = 3  # type: ignore[misc]


def test_secret_is_read_from_file_or_env(tmp_path, monkeypatch) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    cfg = parse_config(
        f"targets: {{redis: [{{name: a, address: 'h:1', password_file: {secret}}},"
        " {name: b, address: 'h:2', password_env: PW}]}\n"
    )
    monkeypatch.setenv("PW", "from-env")
    assert cfg.targets.redis[0].password() == "s3cret"
    assert cfg.targets.redis[1].password() == "from-env"
    with pytest.raises(ConfigError, match="password_file or password_env, not both"):
        parse_config(
            "targets: {redis: [{name: a, address: 'h:1', password_file: /x, password_env: Y}]}"
        )


def test_missing_file_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yml")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("exporter:\n  colectors: {}\n", ":2: exporter.colectors: unknown key"),
        ("exporter: {deadline: x}\n", ":1: exporter.deadline: input should be a valid number"),
        ("exporter: {collectors: {hots: true}}\n", "exporter.collectors.hots: unknown collector"),
        ("exporter:\n\t- bad\n", ":2: YAML syntax error"),
    ],
)
def test_cli_bad_config_exits_2_with_one_line(write_config, text: str, needle: str) -> None:
    path = write_config(text)
    result = run_exporter("--config.file", str(path), "--web.listen-address", "127.0.0.1:0")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0] and needle in lines[0], lines[0]


def test_cli_missing_config_file_exits_2(tmp_path) -> None:
    result = run_exporter("--config.file", str(tmp_path / "absent.yml"))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"sscp-ops exporter: config error: {tmp_path / 'absent.yml'}: config file not found"
    )


def test_cli_port_in_use_exits_1(write_config) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_exporter(
            "--config.file", str(write_config("{}\n")), "--web.listen-address", f"127.0.0.1:{port}"
        )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"sscp-ops exporter: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]


def test_cli_version_and_help() -> None:
    version = subprocess.run(sscp_ops_cmd("--version"), capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("sscp-ops ")
    helptext = subprocess.run(sscp_ops_cmd("exporter", "--help"), capture_output=True, text=True)
    assert helptext.returncode == 0
    assert "--no-collector.host" in helptext.stdout and "--web.listen-address" in helptext.stdout

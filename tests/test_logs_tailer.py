"""The log follower reads every line exactly once across rotation (by real logrotate, rename and
copytruncate), truncation and restarts, in bounded chunks."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from helpers import FIXTURES, require_binary

from sscp_ops.config import ConfigError, load_config, parse_config
from sscp_ops.tailer import LogFollower


def write(path: Path, first: int, last: int, mode: str = "a") -> None:
    with open(path, mode) as f:
        for i in range(first, last):
            f.write(f"line {i:06d} {'x' * (i % 37)}\n")


def numbers(lines: list[str]) -> list[int]:
    return [int(line.split()[1]) for line in lines]


def drain(follower: LogFollower, commit: bool = True) -> list[str]:
    out: list[str] = []
    while True:
        chunks = follower.read()
        got = [line for c in chunks for line in c.lines]
        if commit:
            follower.commit()
        if not got:
            return out
        out.extend(got)


def logrotate(tmp_path: Path, log: Path, directive: str) -> None:
    binary = require_binary("logrotate", "/usr/sbin/logrotate")
    conf = tmp_path / "logrotate.conf"
    conf.write_text(f"{log} {{\n  rotate 5\n  {directive}\n  missingok\n}}\n")
    subprocess.run(
        [binary, "--force", "--state", str(tmp_path / "state"), str(conf)],
        check=True,
        capture_output=True,
        timeout=30,
    )


@pytest.fixture
def log(tmp_path: Path) -> Path:
    d = tmp_path / "log"
    d.mkdir()
    return d / "access.log"


def follower(log: Path, max_bytes: int = 1 << 20) -> LogFollower:
    return LogFollower(log, log.parent.parent / "pos" / "access.json", max_bytes=max_bytes)


def test_reads_only_complete_lines_in_bounded_chunks(log: Path) -> None:
    write(log, 0, 2000)
    with open(log, "a") as f:
        f.write("partial")
    f1 = follower(log, max_bytes=4096)
    first = f1.read()
    assert 0 < sum(len(line) + 1 for c in first for line in c.lines) <= 4096
    lines = [line for c in first for line in c.lines] + drain(f1)
    assert numbers(lines) == list(range(2000))
    with open(log, "a") as f:
        f.write(" now complete\n")
    assert drain(f1) == ["partial now complete"]


@pytest.mark.parametrize("directive", ["create", "copytruncate"])
def test_logrotate_between_reads_loses_nothing(tmp_path: Path, log: Path, directive: str) -> None:
    write(log, 0, 100)
    f1 = follower(log)
    assert numbers(drain(f1)) == list(range(100))
    write(log, 100, 150)  # written after the last read, before the rotation
    logrotate(tmp_path, log, directive)
    assert (log.parent / "access.log.1").exists()
    write(log, 150, 180)
    assert numbers(drain(f1)) == list(range(100, 180))
    # A second rotation: the old .1 moves to .2 and is not read again.
    write(log, 180, 200)
    logrotate(tmp_path, log, directive)
    write(log, 200, 210)
    assert numbers(drain(f1)) == list(range(180, 210))


def test_restart_during_rotation_resumes_without_loss_or_double(tmp_path: Path, log: Path) -> None:
    write(log, 0, 100)
    assert numbers(drain(follower(log))) == list(range(100))
    # Down: more lines, a rotation, more lines in the new file.
    write(log, 100, 130)
    logrotate(tmp_path, log, "create")
    write(log, 130, 140)
    assert numbers(drain(follower(log))) == list(range(100, 140))
    assert drain(follower(log)) == []


def test_uncommitted_read_is_read_again_after_restart(log: Path) -> None:
    write(log, 0, 50)
    f1 = follower(log)
    keys1 = [k for c in f1.read() for k, _ in c]
    # No commit: a crash here re-reads the same lines with the same keys.
    f2 = follower(log)
    keys2 = [k for c in f2.read() for k, _ in c]
    assert keys1 == keys2 and len(keys1) == 50
    f2.commit()
    assert follower(log).read() == []


def test_truncation_in_place_reads_the_new_content(log: Path) -> None:
    write(log, 0, 100)
    f1 = follower(log)
    drain(f1)
    write(log, 500, 510, mode="w")  # truncated and rewritten, shorter than the old offset
    assert numbers(drain(f1)) == list(range(500, 510))
    # Truncated and grown past the old offset: the first-line hash tells it is new.
    write(log, 1000, 1300, mode="w")
    assert numbers(drain(f1)) == list(range(1000, 1300))


def test_replaced_file_with_reused_inode_is_read_from_start(log: Path) -> None:
    write(log, 0, 20)
    f1 = follower(log)
    drain(f1)
    os.unlink(log)
    write(log, 700, 760)
    assert numbers(drain(f1)) == list(range(700, 760))


def test_missing_file_is_no_error(log: Path) -> None:
    f1 = follower(log)
    assert f1.read() == []
    write(log, 0, 3)
    assert numbers(drain(f1)) == [0, 1, 2]


def test_logs_config_section(tmp_path: Path) -> None:
    cfg = load_config(FIXTURES / "logs" / "issue-config.yml")
    assert cfg.logs is not None
    assert [f.kind for f in cfg.logs.files] == ["nginx", "login", "sshd", "mysql_slow"]
    assert cfg.logs.files[3].label == "db1"
    assert parse_config("exporter: {}\n").logs is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "logs:\n  files:\n    - {name: a, path: /x, kind: login, pattern: '(?P<user>x)'}\n",
            "cfg.yml:3: logs.files[0]: Value error, pattern lacks the named group(s) time, ip",
        ),
        (
            "logs:\n  files:\n    - {name: a, path: /x, kind: apache}\n",
            "cfg.yml:3: logs.files[0].kind: input should be 'nginx'",
        ),
        (
            "logs:\n  files:\n    - {name: a, path: /x, kind: sshd, pattern: '('}\n",
            "cfg.yml:3: logs.files[0].pattern: Value error, not a valid regular expression",
        ),
    ],
)
def test_logs_config_errors(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "cfg.yml")
    assert str(info.value).startswith(expected.replace("Value error, ", "")), str(info.value)

"""sshd parsing validated on fail2ban's labelled test logs; abnormal-login rules on a login log."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from helpers import missing

from sscp_ops.config.logs import LoginRules
from sscp_ops.events import EventStore
from sscp_ops.loganalysis.logins import (
    KnownAddresses,
    LoginAnalyzer,
    LoginAttempt,
    LoginLineParser,
    MariaDBGeneralLog,
    parse_mariadb_audit_line,
    parse_sshd_line,
)

BERLIN = ZoneInfo("Europe/Berlin")  # fail2ban's test suite sets TZ=Europe/Berlin
FAIL2BAN_LOGS = Path("/usr/lib/python3/dist-packages/fail2ban/tests/files/logs")


def labelled_lines(path: Path) -> list[tuple[dict, str]]:
    """(failJSON label, the log line it labels) pairs of a fail2ban test log."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    out = []
    for i, line in enumerate(lines):
        if line.startswith("# failJSON:"):
            j = i + 1
            while j < len(lines) and lines[j].startswith("#"):
                j += 1
            if j < len(lines):
                out.append((json.loads(line[len("# failJSON:") :]), lines[j]))
    return out


def test_sshd_parser_agrees_with_fail2ban_labels() -> None:
    path = FAIL2BAN_LOGS / "sshd"
    if not path.exists():
        missing("fail2ban test logs (Debian package fail2ban)")
    labelled = labelled_lines(path)
    assert len(labelled) > 140
    found = false_positives = failures = 0
    for label, line in labelled:
        got = parse_sshd_line(line)
        if not label.get("match"):
            # fail2ban counts one failure per attempt: no double count, no public-key probing.
            false_positives += got is not None and not got.success
            continue
        if label.get("constraint"):
            continue  # aggressive-mode-only or multi-line labels
        failures += 1
        if got is None or got.success:
            continue
        if label.get("host") is not None:
            assert got.ip == label["host"], line
        if label.get("time"):
            # Syslog has no year; fail2ban's labels use the test year, we use the current one.
            # Zoned (ISO) stamps are labelled in the time zone fail2ban's tests run in.
            tz = BERLIN if re.match(r"^(?:<\d+>\d* ?)?\d{4}-", line) else None
            when = datetime.fromtimestamp(got.time, tz).strftime("%m-%dT%H:%M:%S")
            assert when == label["time"][5:19], line
        found += 1
    assert false_positives == 0
    # The rest are connection-level labels (kex errors, "Connection closed" without a user) and
    # multi-line verdicts; see docs/log-detection.md.
    assert found / failures >= 0.65, (found, failures)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "Nov 28 21:02:46 web1 sshd[1201]: Accepted publickey for deploy from 10.0.0.5 port "
            "52100 ssh2: ED25519 SHA256:abc",
            ("deploy", "10.0.0.5", True),
        ),
        (
            "2026-11-28T21:02:46.123456+08:00 web1 sshd[1201]: Failed password for invalid user "
            "admin from 203.0.113.9 port 4242 ssh2",
            ("admin", "203.0.113.9", False),
        ),
        ("Nov 28 21:02:46 web1 sshd[1]: Server listening on 0.0.0.0 port 22.", None),
        ("Nov 28 21:02:46 web1 CRON[1]: pam_unix(cron:session): session opened", None),
    ],
)
def test_sshd_lines(line: str, expected: tuple | None) -> None:
    got = parse_sshd_line(line)
    if expected is None:
        assert got is None
    else:
        assert got is not None and (got.user, got.ip, got.success) == expected


PATTERN = r"(?P<time>\S+ \S+) (?P<user>\S+) (?P<ip>\S+) (?P<result>\S+)"


def attempts(text: str) -> list[LoginAttempt]:
    parser = LoginLineParser(PATTERN, r"^OK$")
    out = [parser.parse(line) for line in text.strip().splitlines()]
    assert all(out)
    return out  # type: ignore[return-value]


def run(analyzer: LoginAnalyzer, items: list[LoginAttempt]) -> list:
    events = []
    for i, a in enumerate(items):
        events.extend(analyzer.feed(a, f"f:{i}"))
    return events


def gm(t: float) -> time.struct_time:
    return time.gmtime(t)


def test_brute_force_per_account_and_per_ip_then_success() -> None:
    rules = LoginRules(maxretry=3, findtime=60, work_hours=(0, 24))
    log = """
2026-11-28 10:00:00+00:00 alice 10.0.0.1 FAIL
2026-11-28 10:00:10+00:00 alice 10.0.0.2 FAIL
2026-11-28 10:00:20+00:00 alice 10.0.0.3 FAIL
2026-11-28 10:00:30+00:00 bob 10.0.0.9 FAIL
2026-11-28 10:00:31+00:00 carol 10.0.0.9 FAIL
2026-11-28 10:00:32+00:00 dave 10.0.0.9 FAIL
2026-11-28 10:00:40+00:00 alice 10.0.0.3 OK
2026-11-28 10:05:00+00:00 erin 10.0.0.7 FAIL
2026-11-28 10:07:00+00:00 erin 10.0.0.7 FAIL
2026-11-28 10:09:00+00:00 erin 10.0.0.7 FAIL
"""
    events = run(LoginAnalyzer("login", rules, localtime=gm), attempts(log))
    got = [(e.type, e.rule, e.account, e.client_ip) for e in events]
    assert got == [
        ("brute_force", "failures-per-user", "alice", "10.0.0.3"),  # 3 accounts' IPs, 1 account
        ("brute_force", "failures-per-ip", "dave", "10.0.0.9"),  # 3 accounts from one IP
        ("login_after_failures", "success-after-failures-per-user", "alice", "10.0.0.3"),
    ]  # erin's failures are 2 minutes apart: never 3 within findtime


def test_unusual_hour_new_ip_and_disabled_account(tmp_path) -> None:
    rules = LoginRules(work_hours=(7, 22), learn_logins=2, disabled_accounts=["olduser"])
    store = EventStore(tmp_path / "events.sqlite")
    log = """
2026-11-28 09:00:00+00:00 alice 10.0.0.1 OK
2026-11-28 10:00:00+00:00 alice 10.0.0.1 OK
2026-11-28 11:00:00+00:00 alice 10.0.0.2 OK
2026-11-28 23:30:00+00:00 bob 10.0.0.5 OK
2026-11-28 12:00:00+00:00 olduser 10.0.0.8 FAIL
"""
    analyzer = LoginAnalyzer("login", rules, KnownAddresses(), localtime=gm)
    items = attempts(log)
    events = run(analyzer, items[:3])
    assert [(e.type, e.client_ip) for e in events] == [("new_ip_login", "10.0.0.2")]
    store.save_login_addresses("login", analyzer.known.take_changes())
    # A restart: what was learned comes back from the store, nothing is new any more.
    again = LoginAnalyzer(
        "login", rules, KnownAddresses(store.login_addresses("login")), localtime=gm
    )
    assert again.known.by_user["alice"] == {"10.0.0.1": 2, "10.0.0.2": 1}
    events = run(again, items[3:])
    assert [(e.type, e.rule, e.account) for e in events] == [
        ("unusual_hour_login", "outside-work-hours", "bob"),
        ("disabled_account_login", "disabled-attempted", "olduser"),
    ]
    store.close()


# -- privileged logins outside the bastion hosts (contract 二.3) --------------------------------

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "logs"
BASTION = LoginRules(
    work_hours=(0, 24),
    learn_logins=1000,
    bastion_hosts=["192.0.2.2", "10.0.9.0/28"],
    privileged_accounts=["root", "git", "dba"],
)


def outside(rules: LoginRules, items: list[LoginAttempt | None]) -> list[tuple[str, str]]:
    analyzer = LoginAnalyzer("t", rules)
    events = run(analyzer, [a for a in items if a is not None])
    return [(e.account, e.client_ip) for e in events if e.type == "privileged_outside_bastion"]


def test_privileged_sshd_login_outside_the_bastion() -> None:
    # fail2ban's captured line (a real sshd line): git logged in from 192.0.2.1.
    lines = (FAIL2BAN_LOGS / "sshd").read_text(encoding="utf-8", errors="replace").splitlines()
    accepted = next(line for line in lines if "Accepted publickey for git from 192.0.2.1" in line)
    same_from_bastion = accepted.replace("192.0.2.1", "192.0.2.2")
    failed = next(line for line in lines if "Failed password for" in line)
    items = [parse_sshd_line(x) for x in (accepted, same_from_bastion, failed)]
    assert all(items) and not items[2].success  # type: ignore[union-attr]
    rules = BASTION.model_copy(
        update={"privileged_accounts": ["root", "git", items[2].user]}  # type: ignore[union-attr]
    )
    # A failed login is for the brute-force rules, not this one.
    assert outside(rules, items) == [("git", "192.0.2.1")]
    # Not a privileged account, or no bastion configured: no event.
    assert outside(BASTION.model_copy(update={"privileged_accounts": ["root"]}), items) == []
    assert outside(BASTION.model_copy(update={"bastion_hosts": []}), items) == []


def test_privileged_mariadb_login_outside_the_bastion_from_the_audit_log() -> None:
    # Captured from a private mariadbd 10.11 with the server_audit plugin (CONNECT events).
    lines = (FIXTURES / "mariadb-audit.log").read_text(encoding="utf-8").splitlines()
    items = [parse_mariadb_audit_line(line) for line in lines]
    got = [(a.user, a.ip, a.success) for a in items if a is not None]
    assert got == [
        ("root", "localhost", True),
        ("dba", "localhost", True),
        ("app", "localhost", True),
        ("dba", "localhost", False),
        ("dba", "127.0.0.1", True),
        ("dba", "192.0.2.2", True),
        ("app", "127.0.0.1", True),
        ("dba", "127.0.0.1", False),
    ]
    # root and dba from localhost (a name: name resolution on) and dba from 127.0.0.1 count;
    # dba from the bastion 192.0.2.2, app (not privileged) and refused logins do not.
    assert outside(BASTION, items) == [
        ("root", "localhost"),
        ("dba", "localhost"),
        ("dba", "127.0.0.1"),
    ]


def test_privileged_mariadb_login_outside_the_bastion_from_the_general_log() -> None:
    # Captured from the same mariadbd's general query log: a refused login is written as a
    # Connect line followed by "Access denied" with the same id.
    parser = MariaDBGeneralLog()
    lines = (FIXTURES / "mariadb-general.log").read_text(encoding="utf-8").splitlines()
    items = [parser.parse(line) for line in lines]
    got = [(a.user, a.ip, a.success) for a in items if a is not None]
    assert got == [
        ("root", "localhost", True),
        ("dba", "localhost", True),
        ("app", "localhost", True),
        ("dba", "localhost", False),
        ("dba", "127.0.0.1", True),
        ("dba", "192.0.2.2", True),
        ("app", "127.0.0.1", True),
        ("dba", "127.0.0.1", False),
    ]
    assert outside(BASTION, items) == [
        ("root", "localhost"),
        ("dba", "localhost"),
        ("dba", "127.0.0.1"),
    ]

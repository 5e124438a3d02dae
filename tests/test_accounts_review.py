"""Account review: parsers on captured MariaDB output, review rules, and the command against
the real MariaDB and a generated OS account tree."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from fx_accounts import ReviewAccounts
from helpers import FIXTURES, parse_exposition, promtool_check_metrics, sscp_ops_cmd

from sscp_ops.accounts import (
    KINDS,
    AccountParseError,
    lastlog_time,
    parse_create_user,
    parse_grants,
    parse_passwd,
    parse_sudoers,
)


def captured() -> dict[str, dict[str, list[str]]]:
    """tests/fixtures/accounts/mariadb-10.11-accounts.txt -> account -> section -> lines."""
    out: dict[str, dict[str, list[str]]] = {}
    account = section = ""
    for line in (FIXTURES / "accounts" / "mariadb-10.11-accounts.txt").read_text().splitlines():
        if line.startswith("== "):
            account = line[3:].split("_f762c2")[0] if "_f762c2" in line else line[3:]
            out[account] = {}
        elif line.startswith("-- "):
            section = line[3:]
            out[account][section] = []
        else:
            out[account][section].append(line)
    return out


def test_parse_captured_mariadb_accounts() -> None:
    acc = captured()
    auth = {a: parse_create_user(s["SHOW CREATE USER"][0]) for a, s in acc.items()}
    privs = {a: parse_grants(s["SHOW GRANTS"]) for a, s in acc.items()}
    # root@localhost: unix_socket OR native password without a hash: empty password over TCP
    assert auth["root@localhost"].methods == ("unix_socket", "mysql_native_password")
    assert auth["root@localhost"].empty_password
    assert auth["root@127.0.0.1"].empty_password
    assert auth["mariadb.sys@localhost"].locked
    assert not auth["rv_all"].empty_password and not auth["rv_all"].old_password
    assert auth["rv_super"].old_password
    assert auth["rv_empty"].empty_password
    assert auth["rv_lock"].locked and not auth["rv_lock"].empty_password
    assert privs["root@localhost"].all_privileges and privs["root@localhost"].grant_option
    assert privs["rv_all"].all_privileges and privs["rv_all"].grant_option
    assert privs["rv_super"].super_priv and not privs["rv_super"].all_privileges
    assert privs["rv_super"].privileges == ("PROCESS", "SUPER")
    assert privs["rv_app"].privileges == () and not privs["rv_app"].grant_option
    assert not privs["mariadb.sys@localhost"].grant_option


@pytest.mark.parametrize(
    ("line", "empty", "old"),
    [
        ("CREATE USER `a`@`%` IDENTIFIED VIA mysql_native_password USING 'invalid' OR unix_socket",
         False, False),
        ("CREATE USER `a`@`%` IDENTIFIED VIA ed25519 USING ''", True, False),
        ("CREATE USER `a`@`%` IDENTIFIED VIA mysql_old_password USING '6f8c114b58f2ce9e'",
         False, True),
        ("CREATE USER `a`@`%` IDENTIFIED WITH 'caching_sha2_password' AS '$A$005$x' REQUIRE NONE"
         " PASSWORD EXPIRE DEFAULT ACCOUNT UNLOCK", False, False),
        ("CREATE USER `a`@`%` IDENTIFIED WITH 'caching_sha2_password' REQUIRE NONE", True, False),
    ],
)  # fmt: skip
def test_parse_create_user_forms(line: str, empty: bool, old: bool) -> None:
    auth = parse_create_user(line)
    assert (auth.empty_password, auth.old_password) == (empty, old)


def test_parsers_reject_garbage() -> None:
    with pytest.raises(AccountParseError):
        parse_create_user("ERROR 1396 (HY000)")
    with pytest.raises(AccountParseError):
        parse_passwd("root:x:0\n")


def test_parse_sudoers_aliases_and_groups() -> None:
    users, groups = parse_sudoers(
        "Defaults env_reset\nroot ALL=(ALL) ALL\n%wheel ALL=(ALL) ALL\n"
        "User_Alias ADMINS = alice, %ops\nADMINS ALL=(ALL) NOPASSWD: ALL\n"
        "bob,carol host1=(root) /bin/ls\n# dave ALL=(ALL) ALL\n"
    )
    assert users == {"root", "alice", "bob", "carol"} and groups == {"wheel", "ops"}


def test_lastlog_time_bounds() -> None:
    import struct

    rec = struct.Struct("=i32s256s")
    data = bytearray(rec.size * 3)
    rec.pack_into(data, 2 * rec.size, 1_790_000_000, b"pts/1", b"")
    assert lastlog_time(bytes(data), 2) == 1_790_000_000
    assert lastlog_time(bytes(data), 1) is None  # never logged in
    assert lastlog_time(bytes(data), 99) is None  # beyond the file


def write_config(tmp_path: Path, accounts: ReviewAccounts) -> Path:
    n = accounts.names
    cfg = tmp_path / "review.yml"
    cfg.write_text(
        f"""
targets:
  mysql: [{{name: db1, address: "127.0.0.1:3306", user: root}}]
account_review:
  inactive_days: 90
  staff:
    - {{name: 张伟, os: [zhangwei], mysql: ["{n["dba"]}"]}}
    - {{name: 李娜, os: [lina], mysql: ["{n["superx"]}", "{n["empty"]}", "{n["old"]}"]}}
    - {{name: 王强, os: [wangqiang]}}
  service_accounts: {{os: [deploy], mysql: ["{n["app"]}", root]}}
  privileged: {{os: [zhangwei], mysql: [root]}}
"""
    )
    return cfg


def run_review(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        sscp_ops_cmd("review", "accounts", *args), capture_output=True, text=True, timeout=120
    )


def test_review_accounts_json_and_metrics(
    review_mysql_accounts: ReviewAccounts, os_tree: Path, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path, review_mysql_accounts)
    metrics = tmp_path / "account_review.prom"
    proc = run_review("--config.file", str(cfg), "--root", str(os_tree), "--format", "json",
                      "--metrics-file", str(metrics))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    rows = {(r["system"], r["account"]): r for r in doc["accounts"]}
    n = review_mysql_accounts.names

    def mysql(key: str, host: str) -> list[str]:
        return rows["mysql:db1", f"{n[key]}@{host}"]["findings"]

    assert mysql("dba", "%") == ["mysql_global_all", "mysql_grant_option", "mysql_any_host"]
    assert mysql("superx", "10.0.%") == ["mysql_super"]
    assert mysql("app", "127.0.0.1") == []
    assert mysql("empty", "localhost") == ["mysql_empty_password"]
    assert mysql("old", "localhost") == ["mysql_old_password"]
    assert mysql("ghost", "192.168.1.9") == ["mysql_not_on_roster"]
    assert rows["mysql:db1", f"{n['locked']}@localhost"]["role"] == "locked"
    assert rows["mysql:db1", f"{n['dba']}@%"]["person"] == "张伟"
    assert rows["mysql:db1", "root@127.0.0.1"]["findings"] == ["mysql_empty_password"]

    def os_(name: str) -> list[str]:
        return rows["os", name]["findings"]

    assert os_("root") == []
    assert os_("zhangwei") == []  # staff, approved sudo, logged in 3 days ago
    assert os_("lina") == ["os_sudo"]  # sudo through the sudo group, not approved
    assert os_("wangqiang") == ["os_sudo", "os_inactive"]  # left 200 days ago, still in OPS
    assert os_("tester") == ["os_sudo", "os_not_on_roster", "os_inactive"]
    # lastlog is per UID: toor shares root's UID 0 and so root's last login
    assert os_("toor") == ["os_uid0", "os_not_on_roster", "os_empty_password"]
    assert os_("deploy") == ["os_sudo"]  # service account with a sudo rule
    assert ("os", "daemon") not in rows and ("os", "sync") not in rows

    found = doc["findings"]
    assert found["os_sudo"] == 4 and found["os_uid0"] == 1
    exposition = parse_exposition(metrics.read_text())
    assert exposition[("sscp_account_review_findings", frozenset({("kind", "os_sudo")}))] == 4
    assert len([k for k in exposition if k[0] == "sscp_account_review_findings"]) == len(KINDS)
    lint = promtool_check_metrics(metrics.read_text())
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_review_accounts_chinese_table(
    review_mysql_accounts: ReviewAccounts, os_tree: Path, tmp_path: Path
) -> None:
    cfg = write_config(tmp_path, review_mysql_accounts)
    proc = run_review("--config.file", str(cfg), "--root", str(os_tree))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("# 账号权限季度复核")
    assert "| 系统 | 账号 | 人员 | 类别 | 权限 | 最近登录 | 问题 |" in out
    n = review_mysql_accounts.names
    assert f"| mysql:db1 | {n['dba']}@% | 张伟 | 在册人员 | ALL WITH GRANT OPTION |" in out
    assert "全局 ALL 权限；可转授权限（GRANT OPTION）；允许任意主机（%）登录" in out
    assert "| os | toor | — | 未登记 |" in out and "从未登录" in out
    assert "- 操作系统：未经批准的 sudo 权限 4 项" in out


def test_review_unknown_mysql_target(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yml"
    cfg.write_text("account_review: {mysql: [nope]}\n")
    proc = run_review("--config.file", str(cfg), "--no-os")
    assert proc.returncode == 2 and "no mysql target named 'nope'" in proc.stderr

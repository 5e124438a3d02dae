"""Fixtures for the account review: accounts with random names on the real MariaDB (dropped
after), and a generated OS account tree (passwd, group, sudoers, shadow, lastlog)."""

from __future__ import annotations

import datetime as dt
import secrets
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fx_mask import root_connect


@dataclass
class ReviewAccounts:
    prefix: str
    names: dict[str, str]  # role in the test -> user name


@pytest.fixture
def review_mysql_accounts() -> Iterator[ReviewAccounts]:
    p = f"sscp_rv{secrets.token_hex(3)}"
    names = {k: f"{p}_{k}" for k in ("dba", "superx", "app", "empty", "old", "locked", "ghost")}
    pw = "'" + secrets.token_urlsafe(16) + "'"  # URL-safe alphabet: no quoting needed
    old_hash = "'6f8c114b58f2ce9e'"  # a pre-4.1 password hash
    stmts = [
        f"CREATE USER '{names['dba']}'@'%' IDENTIFIED BY {pw}",
        f"GRANT ALL PRIVILEGES ON *.* TO '{names['dba']}'@'%' WITH GRANT OPTION",
        f"CREATE USER '{names['superx']}'@'10.0.%' IDENTIFIED BY {pw}",
        f"GRANT SUPER, PROCESS ON *.* TO '{names['superx']}'@'10.0.%'",
        f"CREATE USER '{names['app']}'@'127.0.0.1' IDENTIFIED BY {pw}",
        f"GRANT SELECT ON mysql.* TO '{names['app']}'@'127.0.0.1'",
        f"CREATE USER '{names['empty']}'@'localhost'",
        f"CREATE USER '{names['old']}'@'localhost' IDENTIFIED BY PASSWORD {old_hash}",
        f"CREATE USER '{names['locked']}'@'localhost' IDENTIFIED BY {pw} ACCOUNT LOCK",
        f"CREATE USER '{names['ghost']}'@'192.168.1.9' IDENTIFIED BY {pw}",
    ]
    root = root_connect()
    created = []
    try:
        with root.cursor() as cur:
            for sql in stmts:
                cur.execute(sql)
                if sql.startswith("CREATE USER"):
                    created.append(sql.split("USER ", 1)[1].split(" IDENTIFIED")[0])
        yield ReviewAccounts(p, names)
    finally:
        with root.cursor() as cur:
            for account in created:
                cur.execute(f"DROP USER IF EXISTS {account}")
        root.close()


PASSWD = """\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
sync:x:4:65534:sync:/bin:/bin/sync
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
toor:x:0:0:backdoor:/root:/bin/sh
deploy:x:998:998:deploy:/srv/app:/bin/bash
zhangwei:x:1001:1001:张伟,,,:/home/zhangwei:/bin/bash
lina:x:1002:1002:李娜,,,:/home/lina:/bin/bash
wangqiang:x:1003:1003:王强（已离职）,,,:/home/wangqiang:/bin/bash
tester:x:1004:1004::/home/tester:/bin/bash
backup:x:34:34:backup:/var/backups:/usr/sbin/nologin
"""
GROUP = """\
root:x:0:
sudo:x:27:zhangwei,lina
adm:x:4:syslog,lina
deploy:x:998:
zhangwei:x:1001:
lina:x:1002:
wangqiang:x:1003:
tester:x:1004:
ops:x:1100:tester
"""
SUDOERS = """\
# /etc/sudoers (generated test fixture)
Defaults\tenv_reset
Defaults\tsecure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
root\tALL=(ALL:ALL) ALL
%sudo\tALL=(ALL:ALL) ALL
@includedir /etc/sudoers.d
"""
SUDOERS_D = {
    "deploy": "deploy ALL=(root) NOPASSWD: /usr/bin/systemctl restart tomcat10\n",
    "ops": "User_Alias OPS = %ops, wangqiang\nOPS ALL=(ALL) ALL\n",
    "README.disabled": "tester ALL=(ALL) ALL\n",
}
SHADOW = """\
root:$y$j9T$abc$def:20000:0:99999:7:::
toor::20000:0:99999:7:::
deploy:!:20000:0:99999:7:::
zhangwei:$y$j9T$abc$def:20000:0:99999:7:::
lina:$y$j9T$abc$def:20000:0:99999:7:::
wangqiang:$y$j9T$abc$def:20000:0:99999:7:::
tester:$y$j9T$abc$def:20000:0:99999:7:::
"""


@pytest.fixture
def os_tree(tmp_path: Path) -> Path:
    """A host's account files, with last logins relative to now."""
    root = tmp_path / "host"
    (root / "etc" / "sudoers.d").mkdir(parents=True)
    (root / "var" / "log").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    (root / "etc" / "sudoers").write_text(SUDOERS)
    for name, text in SUDOERS_D.items():
        (root / "etc" / "sudoers.d" / name).write_text(text)
    (root / "etc" / "shadow").write_text(SHADOW)
    now = dt.datetime.now(dt.UTC)
    logins = {0: now - dt.timedelta(days=1), 1001: now - dt.timedelta(days=3),
              1002: now - dt.timedelta(days=30), 1003: now - dt.timedelta(days=200)}  # fmt: skip
    rec = struct.Struct("=i32s256s")
    data = bytearray(rec.size * 1005)
    for uid, when in logins.items():
        rec.pack_into(data, uid * rec.size, int(when.timestamp()), b"pts/0", b"10.0.0.8")
    (root / "var" / "log" / "lastlog").write_bytes(bytes(data))
    return root

"""Account review (least privilege): MySQL / MariaDB accounts, OS accounts and the webhook's API
tokens against the roster.

Pure parsers read what the systems say (``SHOW CREATE USER``, ``SHOW GRANTS``, ``/etc/passwd``,
``/etc/group``, sudoers, ``/etc/shadow``, ``/var/log/lastlog``); :func:`review_mysql`,
:func:`review_os` and :func:`review_tokens` turn them into review rows with findings of a
bounded set of kinds (:data:`KINDS`), which become the quarterly review table, JSON and the metric
``sscp_account_review_findings{kind}``.
"""

from __future__ import annotations

import datetime as dt
import re
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from sscp_ops.config.account_review import AccountReviewConfig

#: Finding kinds (the metric's label values) and their Chinese wording for the review table.
KINDS: dict[str, str] = {
    "mysql_global_all": "全局 ALL 权限",
    "mysql_super": "全局 SUPER 权限",
    "mysql_grant_option": "可转授权限（GRANT OPTION）",
    "mysql_any_host": "允许任意主机（%）登录",
    "mysql_empty_password": "空密码",
    "mysql_old_password": "旧式密码（4.1 之前的哈希）",
    "mysql_not_on_roster": "不在人员名册中",
    "os_not_on_roster": "不在人员名册中",
    "os_uid0": "非 root 的 UID 0 账号",
    "os_sudo": "未经批准的 sudo 权限",
    "os_inactive": "超过期限未登录",
    "os_empty_password": "空密码",
    "token_admin": "未经批准的管理员（admin）令牌",
    "token_inactive": "超过期限未使用",
    "token_not_on_roster": "不在人员名册中",
    "token_revoked": "已吊销（记录待清理）",
}
#: Accounts the server creates for itself.
MYSQL_BUILTIN = frozenset({"mariadb.sys", "mysql.sys", "mysql.session", "mysql.infoschema"})
NO_LOGIN_SHELLS = frozenset({"nologin", "false", "sync", "shutdown", "halt", ""})
LASTLOG_RECORD = struct.Struct("=i32s256s")  # struct lastlog on Linux (x86_64 and others)


class AccountParseError(ValueError):
    """Output or a file that cannot be read as expected."""


# --- MySQL -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MysqlAuth:
    locked: bool
    empty_password: bool
    old_password: bool
    methods: tuple[str, ...]  # plugin names


@dataclass(frozen=True)
class MysqlGlobalPrivs:
    all_privileges: bool
    super_priv: bool
    grant_option: bool
    privileges: tuple[str, ...]


_IDENT = re.compile(
    r" IDENTIFIED (?:BY PASSWORD '(?P<hash>[^']*)'|VIA (?P<via>.+?)|WITH (?P<with>.+?))"
    r"(?= REQUIRE | WITH | PASSWORD EXPIRE| ACCOUNT | DEFAULT ROLE |$)"
)
_VIA_ONE = re.compile(r"^(?P<plugin>\w+)(?: USING '(?P<arg>[^']*)')?$")
_WITH = re.compile(r"^'?(?P<plugin>\w+)'?(?: (?:AS|BY) '(?P<arg>[^']*)')?")
_GRANT_GLOBAL = re.compile(r"^GRANT (?P<privs>.+?) ON \*\.\* TO ")
_OLD_HASH = re.compile(r"^[0-9a-fA-F]{16}$")


def parse_create_user(line: str) -> MysqlAuth:
    """``SHOW CREATE USER`` (MariaDB 10.4+ / MySQL 8) -> how the account authenticates."""
    line = line.strip()
    if not line.startswith("CREATE USER "):
        raise AccountParseError(f"not a CREATE USER statement: {line[:80]!r}")
    locked = " ACCOUNT LOCK" in line
    m = _IDENT.search(line)
    if m is None:  # no credential at all: anyone may log in with an empty password
        return MysqlAuth(locked, True, False, ("mysql_native_password",))
    if m.group("hash") is not None:
        h = m.group("hash")
        return MysqlAuth(locked, h == "", bool(_OLD_HASH.match(h)), ("mysql_native_password",))
    empty = old = False
    methods = []
    if m.group("via") is not None:
        alternatives = [a.strip() for a in m.group("via").split(" OR ")]
        for alt in alternatives:
            one = _VIA_ONE.match(alt)
            if one is None:
                raise AccountParseError(f"cannot read authentication {alt!r}")
            plugin, arg = one.group("plugin"), one.group("arg")
            methods.append(plugin)
            if plugin == "mysql_old_password":
                old = True
            elif plugin in ("mysql_native_password", "ed25519", "caching_sha2_password"):
                empty = empty or not arg  # no USING, or USING '': empty password
    else:
        one = _WITH.match(m.group("with"))
        if one is None:
            raise AccountParseError(f"cannot read authentication {m.group('with')!r}")
        methods.append(one.group("plugin"))
        empty = one.group("plugin") != "auth_socket" and not one.group("arg")
    return MysqlAuth(locked, empty, old, tuple(methods))


def parse_grants(lines: Iterable[str]) -> MysqlGlobalPrivs:
    """``SHOW GRANTS FOR`` lines -> the account's global (``ON *.*``) privileges."""
    privs: list[str] = []
    all_privileges = grant_option = False
    for line in lines:
        m = _GRANT_GLOBAL.match(line.strip())
        if m is None:
            continue
        listed = [p.strip().upper() for p in m.group("privs").split(",")]
        privs.extend(listed)
        all_privileges = all_privileges or "ALL PRIVILEGES" in listed or "ALL" in listed
        grant_option = grant_option or line.rstrip().endswith("WITH GRANT OPTION")
    return MysqlGlobalPrivs(
        all_privileges,
        "SUPER" in privs or all_privileges,
        grant_option,
        tuple(p for p in privs if p != "USAGE"),
    )


# --- OS ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    gecos: str
    home: str
    shell: str

    @property
    def can_log_in(self) -> bool:
        return self.shell.rsplit("/", 1)[-1] not in NO_LOGIN_SHELLS


def parse_passwd(text: str) -> list[PasswdEntry]:
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) != 7 or not parts[2].isdigit() or not parts[3].isdigit():
            raise AccountParseError(f"passwd line {n}: expected 7 fields")
        out.append(
            PasswdEntry(parts[0], int(parts[2]), int(parts[3]), parts[4], parts[5], parts[6])
        )
    return out


def parse_group(text: str) -> dict[str, tuple[int, frozenset[str]]]:
    """``/etc/group`` -> group name -> (gid, member names)."""
    out = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) != 4 or not parts[2].isdigit():
            raise AccountParseError(f"group line {n}: expected 4 fields")
        members = frozenset(m for m in parts[3].split(",") if m)
        out[parts[0]] = (int(parts[2]), members)
    return out


def parse_sudoers(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """sudoers text -> (users, groups) given rules; ``User_Alias`` expanded, ``Defaults`` and
    comments skipped (``#include`` lines are for the caller to follow)."""
    aliases: dict[str, list[str]] = {}
    users: set[str] = set()
    groups: set[str] = set()
    text = re.sub(r"\\\n", " ", text)
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "Defaults", "@include")):
            continue
        if line.startswith("User_Alias"):
            for part in line[len("User_Alias") :].split(":"):
                name, _, members = part.partition("=")
                aliases[name.strip()] = [m.strip() for m in members.split(",") if m.strip()]
            continue
        if line.startswith(("Host_Alias", "Runas_Alias", "Cmnd_Alias", "Cmd_Alias")):
            continue
        if "=" not in line:
            continue
        who = line.split(None, 1)[0]
        for item in who.split(","):
            for name in aliases.get(item, [item]):
                name = name.lstrip("!")
                if name.startswith("%"):
                    groups.add(name[1:])
                elif name != "ALL":
                    users.add(name)
    return frozenset(users), frozenset(groups)


def parse_shadow(text: str) -> dict[str, str]:
    """``/etc/shadow`` -> name -> ``empty`` / ``locked`` / ``set``."""
    out = {}
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) < 2:
            continue
        field_ = parts[1]
        out[parts[0]] = "empty" if field_ == "" else "locked" if field_[:1] in "!*" else "set"
    return out


def lastlog_time(data: bytes, uid: int) -> int | None:
    """The last login (Unix seconds) of ``uid`` in ``/var/log/lastlog`` data; None: never."""
    offset = uid * LASTLOG_RECORD.size
    if offset + LASTLOG_RECORD.size > len(data):
        return None
    when, _, _ = LASTLOG_RECORD.unpack_from(data, offset)
    return when or None


# --- the review --------------------------------------------------------------------------


@dataclass
class Row:
    system: str  # "mysql:db1" or "os"
    account: str
    person: str  # roster name, or "" when not on the roster
    role: str  # staff, service, privileged, builtin, unknown
    rights: str
    last_login: str
    findings: list[str] = field(default_factory=list)


def _roster(cfg: AccountReviewConfig, kind: str) -> dict[str, str]:
    people: dict[str, str] = {}
    for member in cfg.staff:
        for account in getattr(member, kind):
            people[account] = member.name
    return people


def review_mysql(
    system: str,
    accounts: Iterable[tuple[str, str, MysqlAuth, MysqlGlobalPrivs]],
    cfg: AccountReviewConfig,
) -> list[Row]:
    """Rows for ``(user, host, auth, privs)`` of one server."""
    people = _roster(cfg, "mysql")
    service = set(cfg.service_accounts.mysql)
    privileged = set(cfg.privileged.mysql)
    rows = []
    for user, host, auth, privs in accounts:
        if user in MYSQL_BUILTIN or (auth.locked and user not in people):
            role = "builtin" if user in MYSQL_BUILTIN else "locked"
            rows.append(Row(system, f"{user}@{host}", "", role, "", "-"))
            continue
        role = "privileged" if user in privileged else "staff" if user in people else (
            "service" if user in service else "unknown"
        )  # fmt: skip
        rights = ("ALL" if privs.all_privileges else ",".join(privs.privileges) or "库级权限") + (
            " WITH GRANT OPTION" if privs.grant_option else ""
        )
        row = Row(system, f"{user}@{host}", people.get(user, ""), role, rights, "-")
        if user not in privileged:
            if privs.all_privileges:
                row.findings.append("mysql_global_all")
            elif privs.super_priv:
                row.findings.append("mysql_super")
            if privs.grant_option:
                row.findings.append("mysql_grant_option")
        if host in ("%", ""):
            row.findings.append("mysql_any_host")
        if not auth.locked and auth.empty_password:
            row.findings.append("mysql_empty_password")
        if auth.old_password:
            row.findings.append("mysql_old_password")
        if role == "unknown":
            row.findings.append("mysql_not_on_roster")
        rows.append(row)
    return rows


def review_os(
    passwd: list[PasswdEntry],
    groups: Mapping[str, tuple[int, frozenset[str]]],
    sudoers: tuple[frozenset[str], frozenset[str]],
    shadow: Mapping[str, str],
    last_login: Callable[[int], int | None],
    cfg: AccountReviewConfig,
    now: dt.datetime,
) -> list[Row]:
    """Rows for every account that can log in (a real shell) or holds sudo rights."""
    people = _roster(cfg, "os")
    service = set(cfg.service_accounts.os)
    privileged = set(cfg.privileged.os) | {"root"}
    sudo_users, sudo_groups = sudoers
    gid_names = {gid: name for name, (gid, _) in groups.items()}
    rows = []
    for e in passwd:
        member_of = {g for g, (_, members) in groups.items() if e.name in members}
        if e.gid in gid_names:
            member_of.add(gid_names[e.gid])
        sudo = e.name in sudo_users or bool(member_of & sudo_groups)
        if not (e.can_log_in or sudo or e.uid == 0):
            continue
        role = "privileged" if e.name in privileged else "staff" if e.name in people else (
            "service" if e.name in service else "unknown"
        )  # fmt: skip
        when = last_login(e.uid)
        seen = dt.datetime.fromtimestamp(when, dt.UTC) if when else None
        rights = ", ".join(
            x for x in (f"shell {e.shell}" if e.can_log_in else "", "sudo" if sudo else "") if x
        )
        row = Row("os", e.name, people.get(e.name, ""), role, rights,
                  seen.strftime("%Y-%m-%d") if seen else "从未登录")  # fmt: skip
        if e.uid == 0 and e.name != "root":
            row.findings.append("os_uid0")
        if sudo and e.name not in privileged:
            row.findings.append("os_sudo")
        if role == "unknown":
            row.findings.append("os_not_on_roster")
        if (
            e.can_log_in
            and role in ("staff", "unknown")
            and (seen is None or now - seen > dt.timedelta(days=cfg.inactive_days))
        ):
            row.findings.append("os_inactive")
        if shadow.get(e.name) == "empty":
            row.findings.append("os_empty_password")
        rows.append(row)
    return rows


# --- webhook API tokens -------------------------------------------------------------------

#: The webhook store's token table, read with SQLAlchemy Core (sscp_ops does not import
#: webhook). Defined in webhook/store.py (``api_tokens``) and its Alembic migrations
#: (0001: the table; 0002: ``last_used_at``). Only these columns are read: never the hash.
TOKEN_TABLE = "api_tokens"
TOKEN_COLUMNS = ("id", "name", "role", "created_at", "revoked_at")
TOKEN_LAST_USED = "last_used_at"  # absent before revision 0002: inactivity cannot be told


@dataclass(frozen=True)
class TokenRecord:
    id: int
    name: str
    role: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None
    use_recorded: bool  # False: the store does not record last use (not migrated to 0002)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def read_tokens(url: str) -> list[TokenRecord]:
    """The webhook's API tokens from its database (SQLAlchemy URL), without their hashes."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            present = {c["name"] for c in sa.inspect(conn).get_columns(TOKEN_TABLE)}
            recorded = TOKEN_LAST_USED in present
            names = TOKEN_COLUMNS + ((TOKEN_LAST_USED,) if recorded else ())
            table = sa.table(
                TOKEN_TABLE,
                *(sa.column(n, sa.DateTime() if n.endswith("_at") else sa.String()) for n in names),
            )
            rows = conn.execute(sa.select(table).order_by(table.c.id)).mappings().all()
    finally:
        engine.dispose()
    return [
        TokenRecord(
            int(r["id"]),
            r["name"],
            r["role"],
            _utc(r["created_at"]),  # type: ignore[arg-type]
            _utc(r["revoked_at"]),
            _utc(r.get(TOKEN_LAST_USED)),
            recorded,
        )  # fmt: skip
        for r in rows
    ]


def review_tokens(
    tokens: Iterable[TokenRecord], cfg: AccountReviewConfig, now: dt.datetime
) -> list[Row]:
    """Rows for the webhook's API tokens (by name: the token value is never known here)."""
    people = _roster(cfg, "tokens")
    service = set(cfg.service_accounts.tokens)
    privileged = set(cfg.privileged.tokens)
    rows = []
    for t in tokens:
        account = f"#{t.id} {t.name}"
        used = (
            t.last_used_at.strftime("%Y-%m-%d") if t.last_used_at
            else "从未使用" if t.use_recorded else "未记录"
        )  # fmt: skip
        if t.revoked_at is not None:
            row = Row("token", account, people.get(t.name, ""), "revoked", t.role, used)
            row.findings.append("token_revoked")
            rows.append(row)
            continue
        role = "privileged" if t.name in privileged else "staff" if t.name in people else (
            "service" if t.name in service else "unknown"
        )  # fmt: skip
        row = Row("token", account, people.get(t.name, ""), role, t.role, used)
        if t.role == "admin" and t.name not in privileged:
            row.findings.append("token_admin")
        if role == "unknown":
            row.findings.append("token_not_on_roster")
        if t.use_recorded:
            seen = t.last_used_at or t.created_at  # a new token has its grace period
            if now - seen > dt.timedelta(days=cfg.inactive_days):
                row.findings.append("token_inactive")
        rows.append(row)
    return rows


def count_findings(rows: Iterable[Row]) -> dict[str, int]:
    counts = dict.fromkeys(KINDS, 0)
    for row in rows:
        for kind in row.findings:
            counts[kind] += 1
    return counts

"""The ``logs:`` section: log files the exporter follows, and the thresholds of the analyses.

Shape (kept stable: the issue, tests and operations manual rely on it)::

    logs:
      positions_dir: /var/lib/sscp-ops/positions
      events_db: /var/lib/sscp-ops/events.sqlite
      files:
        - {name: web1, path: /var/log/nginx/access.log, kind: nginx,
           format: '$remote_addr - $remote_user [$time_local] "$request" $status ...'}
        - {name: platform-login, path: /var/log/platform/login.log, kind: login,
           pattern: '(?P<time>\\S+ \\S+) (?P<user>\\S+) (?P<ip>\\S+) (?P<result>\\S+)'}
        - {name: sshd, path: /var/log/auth.log, kind: sshd}
        - {name: db1-slow, path: /var/log/mysql/slow.log, kind: mysql_slow, target: db1}
        - {name: db1-audit, path: /var/lib/mysql/server_audit.log, kind: mariadb_audit}
      logins: {maxretry: 5, findtime: 600, work_hours: [7, 22], disabled_accounts: [olduser],
               bastion_hosts: [10.0.9.10], privileged_accounts: [root, opsadmin, dba]}
      exports: {paths: ['^/api/export/', '\\.xlsx$'], max_requests: 50, max_bytes: 104857600,
                window: 3600, backup_accounts: [backup]}

Everything but ``files`` has a default; ``format`` defaults to Nginx's ``combined``.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from sscp_ops.config.base import Model, Name, unique_names

#: Nginx's predefined ``combined`` log format.
COMBINED = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent"'
)

LOGIN_GROUPS = ("time", "user", "ip", "result")


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    return value


Regex = Annotated[str, AfterValidator(_regex)]


def _network(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError("expected an IP address or network (10.0.0.5, 10.0.1.0/24)") from None
    return value


Network = Annotated[str, AfterValidator(_network)]


class LogFile(Model):
    name: Name
    path: Path
    kind: Literal["nginx", "login", "sshd", "mysql_slow", "mariadb_general", "mariadb_audit"]
    #: Nginx ``log_format`` string (kind nginx).
    format: str | None = None
    #: Regex with named groups time, user, ip, result (kind login).
    pattern: Regex | None = None
    #: The monitored system this log belongs to (label ``target``); defaults to ``name``.
    target: Name | None = None
    #: strptime format of the login log's ``time`` group; ISO 8601 when not given.
    time_format: str | None = None
    #: Regex on the login log's ``result`` group that means success.
    success: Regex = r"(?i)^(ok|success|succeeded|true|1|成功)$"

    @model_validator(mode="after")
    def _kind_fields(self):
        if self.format is not None and self.kind != "nginx":
            raise ValueError("format is only for kind nginx")
        if self.kind == "login":
            if self.pattern is None:
                raise ValueError("kind login needs a pattern (regex with named groups)")
            missing = [g for g in LOGIN_GROUPS if g not in re.compile(self.pattern).groupindex]
            if missing:
                raise ValueError(f"pattern lacks the named group(s) {', '.join(missing)}")
        elif self.pattern is not None:
            raise ValueError("pattern is only for kind login")
        return self

    @property
    def label(self) -> str:
        return self.target or self.name

    @property
    def log_format(self) -> str:
        return self.format or COMBINED


class LoginRules(Model):
    #: Failures per account or per source IP within ``findtime`` seconds that make a burst.
    maxretry: Annotated[int, Field(ge=1, le=1000)] = 5
    findtime: Annotated[float, Field(gt=0, le=86400)] = 600.0
    #: Logins in [start, end) local hours are usual; others give ``unusual_hour_login``.
    work_hours: tuple[Annotated[int, Field(ge=0, le=24)], Annotated[int, Field(ge=0, le=24)]] = (
        7,
        22,
    )
    disabled_accounts: list[str] = []
    #: Successful logins seen per account before ``new_ip_login`` is reported (learning).
    learn_logins: Annotated[int, Field(ge=0, le=1000)] = 3
    #: Addresses or networks of the bastion hosts (堡垒机). When set, a successful login of a
    #: privileged account from any other address is a ``privileged_outside_bastion`` event.
    bastion_hosts: list[Network] = []
    #: Privileged accounts: root, the sudoers and the DBA accounts (OS and MariaDB names).
    privileged_accounts: list[str] = ["root"]


class ExportRules(Model):
    #: Regexes (case-insensitive, no inline flags) on the request target that mark export /
    #: download endpoints.
    paths: list[Regex] = [r"/(export|download)s?(/|$|\?)", r"\.(xlsx?|csv)(\?|$)"]
    #: Per user or IP within ``window`` seconds: more requests or bytes is an abnormal export.
    max_requests: Annotated[int, Field(ge=1)] = 50
    max_bytes: Annotated[int, Field(ge=1)] = 100 * 1024 * 1024
    window: Annotated[float, Field(gt=0, le=86400)] = 3600.0
    #: Accounts allowed to dump databases (mysqldump and the like).
    backup_accounts: list[str] = ["backup"]
    #: Rows sent by one statement above which it counts as a large export.
    max_rows_sent: Annotated[int, Field(ge=1)] = 100_000


class LogsConfig(Model):
    positions_dir: Path = Path("/var/lib/sscp-ops/positions")
    events_db: Path = Path("/var/lib/sscp-ops/events.sqlite")
    #: Upper bound of bytes read from one file in one scrape.
    max_bytes_per_scrape: Annotated[int, Field(ge=4096, le=1 << 30)] = 8 << 20
    files: Annotated[list[LogFile], AfterValidator(lambda v: unique_names(v, "log file"))] = []
    logins: LoginRules = LoginRules()
    exports: ExportRules = ExportRules()

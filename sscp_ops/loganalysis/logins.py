"""Login attempts from sshd's auth.log and the platform's login log, and what is abnormal in them.

Parsing (pure): :func:`parse_sshd_line` and :class:`LoginLineParser` turn a line into a
:class:`LoginAttempt` (time, account, source IP, success) or None for lines that are not an
authentication result. :class:`LoginAnalyzer` keeps the state fail2ban keeps (failures per
account and per IP within ``findtime``) plus what it learned of each account's usual addresses,
and raises events:

- ``brute_force``: ``maxretry`` failures within ``findtime`` for one account or one IP;
- ``login_after_failures``: a success for an account / from an IP with such a burst behind it;
- ``unusual_hour_login``: a success outside ``work_hours`` (local time);
- ``new_ip_login``: a success from an IP never seen for the account, once the account has had
  ``learn_logins`` successful logins (before that every address is new);
- ``disabled_account_login``: any attempt on an account listed as disabled;
- ``privileged_outside_bastion``: a successful login of a privileged account (root, sudoers,
  DBA accounts) from an address outside ``bastion_hosts`` (contract 二.3: privileged accounts
  are managed through the bastion host).

MariaDB logins come from the server_audit plugin's log (:func:`parse_mariadb_audit_line`) or
the general query log (:class:`MariaDBGeneralLog`, which needs the line after a ``Connect``
to know whether it was refused).
"""

from __future__ import annotations

import ipaddress
import re
import time as _time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

from sscp_ops.config.logs import LoginRules
from sscp_ops.events import Event


class LoginAttempt(NamedTuple):
    time: float
    user: str
    ip: str
    success: bool
    rule: str  # which line shape it came from, e.g. sshd-failed-password


_HOST = r"(?:::ffff:)?(?P<ip>[^\s]+?)"
_END = r"(?=\s|$|:\s)"
#: sshd messages that are one authentication result each (OpenSSH 5-9, PAM, Solaris), the way
#: fail2ban's sshd filter (normal mode) counts them: one failure per attempt, so PAM's
#: pam_unix line that precedes "Failed password" and failed public keys (clients try each of
#: their keys) are not failures.
SSHD_PATTERNS: tuple[tuple[str, bool, re.Pattern[str]], ...] = tuple(
    (rule, ok, re.compile(rx))
    for rule, ok, rx in (
        (
            "sshd-accepted",
            True,
            r"^Accepted (?:password|publickey|keyboard-interactive(?:/\w+)?|gssapi-with-mic|"
            rf"hostbased) for (?P<user>\S+) from {_HOST}{_END}",
        ),
        (
            "sshd-failed",
            False,
            r"Failed (?:password|keyboard-interactive(?:/\w+)?|none|hostbased|unknown|"
            r"gssapi-with-mic|publickey(?= for invalid user)) for (?:invalid user |illegal user )?"
            rf"(?P<user>.*?) from {_HOST}(?: port \d+)?(?: ssh\d?)?(?:: .*)?(?: \[preauth\])?\s*$",
        ),
        (
            "sshd-pam-failure",
            False,
            r"(?i:error: PAM: (?:authentication (?:failure|error)|user not known to the "
            r"underlying authentication module)) for (?:illegal user |invalid user )?"
            rf"(?P<user>\S*) from {_HOST}{_END}",
        ),
        (
            "sshd-invalid-user",
            False,
            rf"^[iI](?:nvalid|llegal) user (?P<user>.*?) from {_HOST}{_END}",
        ),
        ("sshd-not-allowed", False, rf"User (?P<user>\S+) from {_HOST} not allowed because"),
        ("sshd-root-refused", False, rf"ROOT LOGIN REFUSED FROM {_HOST}{_END}"),
        (
            "sshd-max-attempts",
            False,
            r"maximum authentication attempts exceeded for (?:invalid user )?(?P<user>\S+) "
            rf"from {_HOST}{_END}",
        ),
        (
            "sshd-auth-fail-disconnect",
            False,
            r"Received disconnect from (?P<ip>[\w.:]+?)(?: port \d+)?:\s*\d+: (?:.*Auth fail|"
            r"No (?:supported )?authentication methods available)",
        ),
        (
            "sshd-preauth-disconnect",
            False,
            r"^(?:Disconnecting|Connection (?:closed|reset) by) "
            rf"(?:invalid|authenticating) user (?P<user>.*) {_HOST} port \d+",
        ),
    )
)

_SYSLOG = re.compile(
    r"^(?:<\d+>\d* ?)?(?:(?P<iso>\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:?\d\d)?)|"
    r"(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<hms>\d\d:\d\d:\d\d))"
    r" (?:\S+ )?(?:\S*sshd(?:-session)?(?:\[\d+\])?:|\[sshd\]:?|sshd \d+ - (?:-|\[.*?\]+) )"
    r"\s*(?:\[ID \d+ [\w.]+\] )?(?P<msg>.*)$"
)
_MONTHS = {
    m: i + 1 for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())
}


def syslog_time(
    mon: str, day: str, hms: str, now: Callable[[], float] = _time.time
) -> float | None:
    """Classic syslog time (no year): this year, or last year if that would be in the future."""
    current = datetime.fromtimestamp(now())
    try:
        h, m, s = (int(x) for x in hms.split(":"))
        stamp = datetime(current.year, _MONTHS[mon], int(day), h, m, s)
        if stamp.timestamp() > now() + 86400:
            stamp = stamp.replace(year=current.year - 1)
    except (KeyError, ValueError):
        return None
    return stamp.timestamp()


def parse_sshd_message(message: str) -> tuple[str, bool, str, str] | None:
    """(rule, success, user, ip) of one sshd message, or None when it is no login result."""
    for rule, ok, regex in SSHD_PATTERNS:
        m = regex.search(message)
        if m is not None:
            ip = m.group("ip")
            user = m.group("user") if "user" in regex.groupindex else None
            if rule == "sshd-root-refused":
                user = "root"
            return rule, ok, (user or "").strip(), ip
    return None


def parse_sshd_line(line: str, now: Callable[[], float] = _time.time) -> LoginAttempt | None:
    """One auth.log line -> the login attempt it records, or None."""
    m = _SYSLOG.match(line)
    if m is None or "sshd" not in line[:120]:
        return None
    found = parse_sshd_message(m.group("msg"))
    if found is None:
        return None
    if m.group("iso"):
        try:
            when: float | None = datetime.fromisoformat(m.group("iso")).timestamp()
        except ValueError:
            when = None
    else:
        when = syslog_time(m.group("mon"), m.group("day"), m.group("hms"), now)
    if when is None:
        return None
    rule, ok, user, ip = found
    return LoginAttempt(when, user, ip, ok, rule)


_AUDIT = re.compile(
    r"^(?P<date>\d{8}) (?P<hms>\d\d:\d\d:\d\d),[^,]*,(?P<user>[^,]*),(?P<host>[^,]*),\d+,\d+,"
    r"(?P<op>CONNECT|FAILED_CONNECT),[^,]*,[^,]*,(?P<ret>\d+)"
)


def parse_mariadb_audit_line(line: str) -> LoginAttempt | None:
    """One server_audit log line (``20261202 06:29:42,db1,dba,10.0.9.10,4,0,CONNECT,,,0``)
    -> the login attempt, or None for other operations. Times are the server's local time."""
    m = _AUDIT.match(line)
    if m is None:
        return None
    try:
        when = datetime.strptime(m.group("date") + m.group("hms"), "%Y%m%d%H:%M:%S")
    except ValueError:
        return None
    ok = m.group("op") == "CONNECT" and m.group("ret") == "0"
    rule = "mariadb-audit-connect" if ok else "mariadb-audit-failed-connect"
    return LoginAttempt(when.timestamp(), m.group("user"), m.group("host"), ok, rule)


_GENERAL = re.compile(
    r"^(?:(?P<date>\d{6}) +(?P<hms>\d{1,2}:\d\d:\d\d))?\t+ *(?P<id>\d+) (?P<cmd>\w+)\t(?P<arg>.*)$"
)
_GENERAL_CONNECT = re.compile(r"^(?P<user>\S*)@(?P<host>\S+) (?:as \S+ )?on ")
_GENERAL_DENIED = re.compile(r"^Access denied for user '(?P<user>[^']*)'@'(?P<host>[^']*)'")


class MariaDBGeneralLog:
    """The general query log's ``Connect`` lines. MariaDB writes ``Connect user@host`` before it
    checks the password and ``Connect Access denied ...`` with the same id when it refuses, so a
    connect is reported when the next line shows its outcome (one attempt per line at most)."""

    def __init__(self) -> None:
        self._time: float | None = None
        self._pending: tuple[str, float, str, str] | None = None  # id, time, user, host

    def parse(self, line: str) -> LoginAttempt | None:
        m = _GENERAL.match(line.rstrip("\n"))
        if m is None:
            return None
        if m.group("date"):
            try:
                stamp = datetime.strptime(m.group("date") + " " + m.group("hms"), "%y%m%d %H:%M:%S")
            except ValueError:
                return None
            self._time = stamp.timestamp()
        pending, self._pending = self._pending, None
        if m.group("cmd") == "Connect" and self._time is not None:
            denied = _GENERAL_DENIED.match(m.group("arg"))
            if denied is not None:
                return LoginAttempt(
                    self._time, denied["user"], denied["host"], False, "mariadb-general-denied"
                )
            connect = _GENERAL_CONNECT.match(m.group("arg"))
            if connect is not None:
                self._pending = (m.group("id"), self._time, connect["user"], connect["host"])
        if pending is None:
            return None
        return LoginAttempt(pending[1], pending[2], pending[3], True, "mariadb-general-connect")


class LoginLineParser:
    """The platform's login log: a regex with named groups time, user, ip, result."""

    def __init__(self, pattern: str, success: str, time_format: str | None = None) -> None:
        self.regex = re.compile(pattern)
        self.success = re.compile(success)
        self.time_format = time_format

    def parse(self, line: str) -> LoginAttempt | None:
        m = self.regex.search(line)
        if m is None:
            return None
        when = self._time(m.group("time"))
        if when is None:
            return None
        ok = self.success.search(m.group("result")) is not None
        return LoginAttempt(when, m.group("user"), m.group("ip"), ok, "login-log")

    def _time(self, text: str) -> float | None:
        try:
            if self.time_format:
                return datetime.strptime(text, self.time_format).timestamp()
            if text.replace(".", "", 1).isdigit():
                return float(text)
            return datetime.fromisoformat(text.replace(" ", "T", 1)).timestamp()
        except ValueError:
            return None


class KnownAddresses:
    """Which IPs each account logged in from (kept in memory; the store persists it)."""

    def __init__(self, by_user: dict[str, dict[str, int]] | None = None) -> None:
        self.by_user: dict[str, dict[str, int]] = by_user or {}
        #: (user, ip) pairs whose count changed since the last save.
        self.dirty: set[tuple[str, str]] = set()

    def record(self, user: str, ip: str) -> tuple[int, bool]:
        """(successful logins before this one, whether ``ip`` is new for ``user``)."""
        ips = self.by_user.setdefault(user, {})
        before = sum(ips.values())
        new = ip not in ips
        ips[ip] = ips.get(ip, 0) + 1
        self.dirty.add((user, ip))
        return before, new

    def take_changes(self) -> list[tuple[str, str, int]]:
        out = [(u, ip, self.by_user[u][ip]) for u, ip in sorted(self.dirty)]
        self.dirty.clear()
        return out


class LoginAnalyzer:
    def __init__(
        self,
        source: str,
        rules: LoginRules,
        known: KnownAddresses | None = None,
        localtime: Callable[[float], _time.struct_time] = _time.localtime,
    ) -> None:
        self.source = source
        self.rules = rules
        self.known = known or KnownAddresses()
        self.localtime = localtime
        self.disabled = {u.lower() for u in rules.disabled_accounts}
        self.privileged = {u.lower() for u in rules.privileged_accounts}
        self.bastions = [ipaddress.ip_network(n, strict=False) for n in rules.bastion_hosts]
        self.failures: dict[tuple[str, str], deque[float]] = {}
        self._banned_until: dict[tuple[str, str], float] = {}
        self.attempts = {"success": 0, "failure": 0}

    def _window(self, key: tuple[str, str], now: float) -> deque[float]:
        q = self.failures.setdefault(key, deque())
        horizon = now - self.rules.findtime
        while q and q[0] < horizon:
            q.popleft()
        return q

    def feed(self, a: LoginAttempt, key: str) -> list[Event]:
        """Account for one attempt; ``key`` identifies its log line (for event keys)."""
        events: list[Event] = []

        def event(kind: str, rule: str, detail: str) -> None:
            events.append(
                Event(
                    f"{self.source}:{key}:{kind}:{rule}",
                    a.time,
                    self.source,
                    kind,
                    rule,
                    a.ip,
                    a.user,
                    detail,
                )
            )

        if a.user.lower() in self.disabled:
            state = "succeeded" if a.success else "attempted"
            event("disabled_account_login", f"disabled-{state}", f"login {state} ({a.rule})")
        subjects = [("user", a.user)] if a.user else []
        subjects.append(("ip", a.ip))
        if not a.success:
            self.attempts["failure"] += 1
            for subject in subjects:
                q = self._window(subject, a.time)
                q.append(a.time)
                if len(q) >= self.rules.maxretry and self._banned_until.get(subject, 0) <= a.time:
                    self._banned_until[subject] = a.time + self.rules.findtime
                    event(
                        "brute_force",
                        f"failures-per-{subject[0]}",
                        f"{len(q)} failed logins for {subject[0]} {subject[1]} within "
                        f"{self.rules.findtime:.0f}s",
                    )
            self._prune(a.time)
            return events
        self.attempts["success"] += 1
        if self.bastions and a.user.lower() in self.privileged and not self._from_bastion(a.ip):
            event(
                "privileged_outside_bastion",
                "privileged-login-not-from-bastion",
                f"privileged account logged in from {a.ip}, not a bastion host ({a.rule})",
            )
        for subject in subjects:
            q = self._window(subject, a.time)
            if len(q) >= self.rules.maxretry:
                event(
                    "login_after_failures",
                    f"success-after-failures-per-{subject[0]}",
                    f"login after {len(q)} failures for {subject[0]} {subject[1]}",
                )
                q.clear()
        hour = self.localtime(a.time).tm_hour
        start, end = self.rules.work_hours
        usual = start <= hour < end if start <= end else (hour >= start or hour < end)
        if not usual:
            event("unusual_hour_login", "outside-work-hours", f"login at {hour:02d}h local")
        if a.user:
            before, new = self.known.record(a.user, a.ip)
            if new and before >= self.rules.learn_logins:
                event("new_ip_login", "ip-new-for-account", f"first login from {a.ip}")
        return events

    def _from_bastion(self, ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip.removeprefix("::ffff:"))
        except ValueError:  # a host name (name resolution on): not a configured address
            return False
        return any(address in net for net in self.bastions)

    def _prune(self, now: float) -> None:
        if len(self.failures) < 100_000:
            return
        horizon = now - self.rules.findtime
        self.failures = {k: q for k, q in self.failures.items() if q and q[-1] >= horizon}
        self._banned_until = {k: t for k, t in self._banned_until.items() if t > now}

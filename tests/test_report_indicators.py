"""Ticket, vulnerability and backup indicators over a seeded set of known records."""

from __future__ import annotations

from datetime import datetime, timedelta
from fractions import Fraction

from sscp_ops.holiday_calendar import CHINA_TZ
from sscp_ops.report import indicators as ind
from sscp_ops.report.period import month, months_back, quarter, year
from sscp_ops.report.records import BackupRun, Ticket

P = month("2026-10", CHINA_TZ)
M = timedelta(minutes=1)
H = timedelta(hours=1)


def at(day: int, hour: int = 10, minute: int = 0, mon: int = 10) -> datetime:
    return datetime(2026, mon, day, hour, minute, tzinfo=CHINA_TZ)


def incident(n: int, start: datetime, ack: timedelta | None, fix: timedelta | None, **kw) -> Ticket:
    return Ticket(
        id=f"INC-{n}",
        kind="incident",
        created=start,  # the SLA clocks start here
        fired=start - 2 * M,  # Alertmanager's startsAt: not used for the SLA
        acknowledged=start + ack if ack is not None else None,
        resolved=start + fix if fix is not None else None,
        **kw,
    )


# Six incidents in October: responses 5, 16, 20, 30 min, none, 14 min.
INCIDENTS = [
    incident(1, at(2), 5 * M, 1 * H),
    incident(2, at(5), 16 * M, 3 * H),
    incident(3, at(9), 20 * M, 2 * H),
    incident(4, at(12), 30 * M, 4 * H, problem_id="PRB-1", recurrence_of="INC-0"),
    incident(5, at(31, 23, 30), None, None),  # open at month end, never acknowledged
    incident(6, at(20), 14 * M, 30 * M, problem_id="PRB-1", recurrence_of="INC-0"),
    incident(7, at(28, mon=9), 5 * M, 1 * H),  # September: not counted
]


def test_period_bounds() -> None:
    assert P.start.isoformat() == "2026-10-01T00:00:00+08:00"
    assert P.end.isoformat() == "2026-11-01T00:00:00+08:00"
    assert P.seconds == 31 * 86400
    assert quarter("2026Q4", CHINA_TZ).end == year("2026", CHINA_TZ).end
    assert months_back(P.end, 6).isoformat() == "2026-05-01T00:00:00+08:00"


def test_response_counts_late_and_unacknowledged() -> None:
    incidents = ind.incidents_in(INCIDENTS, P.start, P.end)
    assert [t.id for t in incidents] == ["INC-1", "INC-2", "INC-3", "INC-4", "INC-5", "INC-6"]
    r = ind.response(incidents, 15 * M, 3, Fraction(1), "e")
    assert r.measured == 4  # 16, 20, 30 min and the unacknowledged one
    assert r.passed is False
    assert r.deduction.percent == 1
    assert {d["ticket"] for d in r.details} == {"INC-2", "INC-3", "INC-4", "INC-5"}


def test_mean_resolution_and_rate() -> None:
    incidents = ind.incidents_in(INCIDENTS, P.start, P.end)
    mean = ind.mean_resolution(incidents, 2 * H, None, "e")
    # (1 + 3 + 2 + 4 + 0.5) h / 5 resolved = 2.1 h
    assert mean.measured == 2.1 * 3600
    assert mean.passed is False
    assert mean.deduction.percent == 0  # no amount configured
    rate = ind.resolution_rate(incidents, P.end, Fraction(95, 100), Fraction(1), "e")
    assert rate.measured == 5 / 6
    assert rate.passed is False
    assert rate.deduction.percent == 1


def test_recurrence_window() -> None:
    extra = [
        incident(10 + i, at(1, mon=6) + i * H, M, H, problem_id="PRB-1", recurrence_of="INC-0")
        for i in range(2)
    ] + [incident(20, at(1, mon=4), M, H, problem_id="PRB-1", recurrence_of="INC-0")]
    window = months_back(P.end, 6)
    r = ind.recurrence(INCIDENTS + extra, window, P.end, 3, None, "e", "recurrences")
    assert r.measured == 4  # two in October, two in June; April is outside the window
    assert r.passed is False
    ok = ind.recurrence(INCIDENTS, window, P.end, 3, None, "e", "recurrences")
    assert ok.measured == 2 and ok.passed is True


def vuln(n: int, found: datetime, fixed: datetime | None, risk: str = "high", due=None) -> Ticket:
    return Ticket(
        id=f"VUL-{n}", kind="vulnerability", created=found, resolved=fixed, risk=risk, due_at=due
    )


VULNS = [
    vuln(1, at(3), at(4)),  # 24 h: on time
    vuln(2, at(10), at(12, 11)),  # 49 h: 1 h late -> 1 day
    vuln(3, at(20), at(23, 10, 1)),  # 72 h 1 min: 24 h 1 min late -> 2 days
    vuln(4, at(30), None, due=at(30) + 48 * H),  # open, 48 h pass on 1 Nov 10:00: not late yet
    vuln(5, at(28), None, due=at(28) + 48 * H),  # open, late since 30 Oct 10:00 -> 2 days
    vuln(6, at(5), at(20), risk="medium", due=at(25)),  # medium: not in fix time, fixed: in rate
    vuln(7, at(25, mon=9), at(2), due=at(27, mon=9)),  # late across the month boundary
]


def test_high_risk_fix_time() -> None:
    r = ind.vuln_fix_time(VULNS, P.start, P.end, 48 * H, Fraction(2), ["high", "critical"], "e")
    late = {d["ticket"]: d["late_seconds"] for d in r.details}
    assert late["VUL-1"] == 0
    assert late["VUL-2"] == 3600
    assert late["VUL-3"] == 24 * 3600 + 60
    assert late["VUL-4"] == 0
    assert late["VUL-5"] == 38 * 3600  # due 30 Oct 10:00, still open at 1 Nov 00:00
    # VUL-7 was due 29 Sep; only October's lateness (1 Oct 00:00 to 2 Oct 10:00) is charged
    assert late["VUL-7"] == (at(2) - P.start).total_seconds()
    # days: VUL-2 1, VUL-3 2, VUL-5 (30 Oct 10:00 -> 1 Nov 00:00 = 38 h) 2, VUL-7 (34 h) 2
    assert r.deduction.percent == 2 * (1 + 2 + 2 + 2)
    assert r.passed is False


def test_fix_rate() -> None:
    r = ind.vuln_fix_rate(VULNS, P.start, P.end, Fraction(9, 10), None, "e")
    # due: 1, 2, 3, 5, 6, 7 (fixed or overdue); VUL-4 not yet due. fixed: 1, 2, 3, 6, 7
    assert r.measured == 5 / 6
    assert r.passed is False


def run(kind: str, day: int, ok: bool, hours: float = 1.0) -> BackupRun:
    return BackupRun("mysql", kind, at(day), at(day) + timedelta(hours=hours), ok)


def test_backups_restores_drills() -> None:
    runs = [run("backup", d, True) for d in range(1, 32)] * 40 + [run("backup", 15, False)]
    runs += [
        run("drill", 14, False, 0.5),
        run("drill", 21, True, 3.5),
        run("drill", 22, True, 4.25),
    ]
    b = ind.success_rate(
        "backup_success",
        "备份成功率",
        runs,
        "backup",
        P.start,
        P.end,
        Fraction(999, 1000),
        None,
        "e",
    )
    assert b.measured == 1240 / 1241
    assert b.passed is True  # 99.92 %
    r = ind.success_rate(
        "restore_success", "恢复成功率", runs, "drill", P.start, P.end, Fraction(1), None, "e"
    )  # every drill is a restore
    assert r.measured == 2 / 3 and r.passed is False
    d = ind.recovery_time(runs, P.start, P.end, 4 * H, None, "e")
    assert d.measured == 4.25 * 3600 and d.passed is False


def test_no_data_is_never_a_pass() -> None:
    empty = ind.success_rate(
        "backup_success", "备份成功率", [], "backup", P.start, P.end, Fraction(999, 1000), None, "e"
    )
    assert empty.measured is None and empty.passed is None
    assert ind.mean_resolution([], 2 * H, None, "e").passed is None
    assert ind.vuln_fix_rate([], P.start, P.end, Fraction(9, 10), None, "e").passed is None


def test_security_section_names_privileged_logins_outside_the_bastion() -> None:
    from datetime import datetime

    from sscp_ops.events import EVENT_TYPES
    from sscp_ops.holiday_calendar import CHINA_TZ
    from sscp_ops.report.build import EVENT_NAMES, events_section
    from sscp_ops.report.period import Period
    from sscp_ops.report.records import SecurityEvent

    assert set(EVENT_NAMES) == set(EVENT_TYPES)
    period = Period(
        "monthly",
        "2026-11",
        "2026年11月",
        datetime(2026, 11, 1, tzinfo=CHINA_TZ),
        datetime(2026, 12, 1, tzinfo=CHINA_TZ),
    )
    event = SecurityEvent(
        datetime(2026, 11, 3, 9, 0, tzinfo=CHINA_TZ), "privileged_outside_bastion", "10.3.0.7"
    )
    section = events_section(period, [event, event])
    assert section["by_kind"] == [
        {"kind": "privileged_outside_bastion", "name": "特权账号未经堡垒机登录", "count": 2}
    ]

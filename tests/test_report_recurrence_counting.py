"""Recurrence counting is a setting (issue 16, item 9): 已解决故障在半年内连续发生≤3次 read as
occurrences (default: the 4th occurrence fails) or as recurrences after the first (4
occurrences are 3 recurrences: pass). Expected values worked by hand per row."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from sscp_ops.holiday_calendar import CHINA_TZ
from sscp_ops.report import indicators as ind
from sscp_ops.report.period import month, months_back
from sscp_ops.report.records import Ticket

P = month("2026-10", CHINA_TZ)
WINDOW = months_back(P.end, 6)


def fault(n: int, day: datetime, first: bool, alertname: str = "ApiDown") -> Ticket:
    return Ticket(
        id=str(n),
        kind="incident",
        created=day,
        alertname=alertname,
        target="api",
        recurrence_of=None if first else "1",
    )


def occurrences(n: int, alertname: str = "ApiDown") -> list[Ticket]:
    start = datetime(2026, 9, 1, 10, tzinfo=CHINA_TZ)
    return [fault(i + 1, start + timedelta(days=7 * i), i == 0, alertname) for i in range(n)]


# (occurrences of one fault in the window, counting, measured, passed) with limit 3
ROWS = [
    (1, "occurrences", 2, True),  # ApiDown once; the worst is DiskFull, twice
    (3, "occurrences", 3, True),  # the 3rd occurrence: at the limit
    (4, "occurrences", 4, False),  # the 4th occurrence: 连续发生 4 次 > 3
    (4, "recurrences", 3, True),  # 4 occurrences = 3 recurrences after the first
    (5, "recurrences", 4, False),
]


@pytest.mark.parametrize(("n", "counting", "measured", "passed"), ROWS)
def test_recurrence_counting(n, counting, measured, passed) -> None:
    other = occurrences(2, "DiskFull")  # another fault, fewer times: never the worst
    r = ind.recurrence(occurrences(n) + other, WINDOW, P.end, 3, None, "e", counting)
    assert (r.measured, r.passed) == (measured, passed)
    assert ("按发生次数计" if counting == "occurrences" else "按首次之后的复发次数计") in r.target


def test_default_is_occurrences() -> None:
    from sscp_ops.config.report import RecurrenceRule

    assert RecurrenceRule().counting == "occurrences"
    r = ind.recurrence(occurrences(4), WINDOW, P.end, 3, None, "e")
    assert (r.measured, r.passed) == (4, False)  # before: 3 recurrences, passed


def test_reminders_are_no_faults_and_never_recur() -> None:
    """A compliance reminder (an incident the webhook's ``faults`` rule says is no fault, the
    API's ``fault: false``) fired five times: no fault recurred; the real fault, twice."""
    import dataclasses

    reminders = [
        dataclasses.replace(t, fault=False) for t in occurrences(5, "AccountReviewOverdue")
    ]
    r = ind.recurrence(reminders + occurrences(2), WINDOW, P.end, 3, None, "e")
    assert (r.measured, r.passed) == (2, True)

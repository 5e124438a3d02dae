"""Issue 16: every reading of the contract is a setting; one table per reading, each expected
deduction worked out by hand in the comments (docs/sla.md lists the sentence, the default reading,
the setting and the test that pins it).

Availability comes from an in-memory Prometheus stand-in serving one probe target that is up
except during the outages given; dates are fixed, nothing depends on today's date.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from fractions import Fraction as F

import pytest

from sscp_ops.config import parse_config
from sscp_ops.holiday_calendar import CHINA_TZ, HolidayCalendar
from sscp_ops.report import indicators as ind
from sscp_ops.report.build import availability_section, deductions, year_to_date_section
from sscp_ops.report.penalty import Deduction, count_deduction, shortfall_deduction
from sscp_ops.report.period import contract_year, month, year
from sscp_ops.report.records import Series, Ticket

pytestmark = pytest.mark.dates


def t(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=CHINA_TZ).timestamp()


class FakePrometheus:
    """``sla_probe_success{target="home"}``: 1 at every step from ``since``, 0 in ``outages``."""

    def __init__(self, outages: list[tuple[float, float]], since: float) -> None:
        self.outages, self.since = outages, since

    def query_range(self, query: str, start: float, end: float, step: int) -> list[Series]:
        points, ts = [], start
        while ts < end:
            if ts >= self.since:
                down = any(lo <= ts < hi for lo, hi in self.outages)
                points.append((ts, 0.0 if down else 1.0))
            ts += step
        return [Series({"target": "home"}, points)]

    def query(self, query: str, at: float) -> list:
        return []


OCT = month("2026-10", CHINA_TZ)
HOLIDAY_50 = (t(2026, 10, 2, 10), t(2026, 10, 2, 10, 50))  # 国庆, 50 min
NORMAL_50 = (t(2026, 10, 15, 14), t(2026, 10, 15, 14, 50))  # a working day, 50 min


def section(extra: str, outages, period=OCT, calendar: HolidayCalendar | None = None):
    cfg = parse_config(f"report:\n  step_seconds: 60\n{extra}")
    cal = calendar or cfg.calendar.build()
    return availability_section(period, cfg.report, cal, FakePrometheus(outages, t(2026, 1, 1)))


# October 2026: 44,640 min; 国庆 1-7 Oct = 10,080 min; the rest 34,560 min.
HOLIDAY_CASES = [
    # One 50-min outage on a holiday, default (holiday time on the holiday scale only):
    #   normal: 0 down of 34,560 = 100 % -> 0 %.
    #   holiday: 10,030 / 10,080 = 99.504 %; 0.396 % short / 1 % = 0.396 step, floor -> 0 %.
    ("holiday only", "", [HOLIDAY_50], 0, 0),
    # The same with a started step counting: holiday 0.396 step -> 1 step = 1 %.
    (
        "holiday only, ceil",
        "  holiday_availability: {step: 0.01, rounding: ceil}\n",
        [HOLIDAY_50],
        0,
        1,
    ),
    # The old reading (charged twice): both_scales + ceil. Whole month 44,590 / 44,640 =
    # 99.888 %: 0.012 % short = 0.12 step -> 1 %; plus holiday 1 %: 2 % for one outage.
    (
        "holiday only, both scales (old)",
        "  holiday_downtime: both_scales\n  availability: {rounding: ceil}\n"
        "  holiday_availability: {step: 0.01, rounding: ceil}\n",
        [HOLIDAY_50],
        1,
        1,
    ),
    # Holiday and normal in one month, default: normal 34,510 / 34,560 = 99.8553 %:
    # 0.0447 % short = 0.447 step -> floor 0 %; holiday 0.396 step -> 0 %.
    ("holiday and normal", "", [HOLIDAY_50, NORMAL_50], 0, 0),
    # ... ceil: normal 0.447 -> 1 step = 1 %; holiday 0.396 -> 1 %. Total 2 %.
    (
        "holiday and normal, ceil",
        "  availability: {rounding: ceil}\n  holiday_availability: {step: 0.01, rounding: ceil}\n",
        [HOLIDAY_50, NORMAL_50],
        1,
        1,
    ),
    # ... linear: normal 0.999 - 34,510/34,560 = 0.0447/100 exactly (0.999*34,560 = 34,525.44,
    # short 15.44/34,560 = 193/432,000); 193/432,000 / (1/1000) = 193/432 steps x 1 %.
    (
        "holiday and normal, linear",
        "  availability: {rounding: linear}\n",
        [HOLIDAY_50, NORMAL_50],
        F(193, 432),
        0,
    ),
    # A holiday outage of 3 h: 9,900 / 10,080 = 98.214 %; 1.686 % short = 1.686 steps -> 1 %.
    ("long holiday outage", "", [(t(2026, 10, 3, 0), t(2026, 10, 3, 3))], 0, 1),
]


@pytest.mark.parametrize(
    ("extra", "outages", "normal_pct", "holiday_pct"),
    [c[1:] for c in HOLIDAY_CASES],
    ids=[c[0] for c in HOLIDAY_CASES],
)
def test_holiday_readings(extra, outages, normal_pct, holiday_pct) -> None:
    _, (normal, holiday) = section(extra, outages)
    assert normal.deduction.percent == normal_pct
    assert holiday.deduction.percent == holiday_pct
    assert "档" in holiday.deduction.arithmetic or holiday.measured == 1


def test_holiday_time_is_left_out_of_the_normal_ratio() -> None:
    sec, (normal, _) = section("", [HOLIDAY_50, NORMAL_50])
    assert sec["normal"]["down_seconds"] == 50 * 60  # the 15 Oct one only
    assert sec["normal"]["up_seconds"] + sec["normal"]["down_seconds"] == 34560 * 60
    assert sec["whole"]["down_seconds"] == 100 * 60  # both, shown for information
    assert normal.name == "系统可用性（非节假日）"


# 99.888 % against 99.9 % in steps of 0.1 %: 0.012 % short = 0.12 step.
STEP_CASES = [
    ("floor", F(0)),  # only full steps: 0 steps -> 0 %
    ("ceil", F(1)),  # a started step counts: 1 step -> 1 %
    ("linear", F(12, 100)),  # 0.12 step x 1 % = 0.12 %
]


@pytest.mark.parametrize(("rounding", "percent"), STEP_CASES)
def test_step_rule_at_99_888(rounding: str, percent: F) -> None:
    d = shortfall_deduction(F("0.99888"), F("0.999"), F("0.001"), F(1), rounding)
    assert d.percent == percent
    # The report prints the rule and the arithmetic, also when nothing is deducted.
    assert "0.012%" in d.arithmetic and "0.12 档" in d.arithmetic
    assert {"floor": "不足一档不计", "ceil": "不足一档按一档计", "linear": "按比例计"}[
        rounding
    ] in d.arithmetic


def ded(key: str, percent) -> ind.Indicator:
    return ind.Indicator(key, key, "", None, "", False, "", Deduction(F(percent), f"扣 {percent}%"))


CAP_CASES = [
    # The bad month of the issue: 635 % -> capped at 100 % of the fee (4,000 元 -> 4,000 元).
    ("total cap", "", [("availability", 630), ("vuln_fix_time", 5)], 100, True, 4000),
    # Under the cap: 4 % + 2 % = 6 % -> 240 元.
    ("under cap", "", [("availability", 4), ("holiday_availability", 2)], 6, False, 240),
    # Per-indicator cap: availability 30 % capped at 20 %, + 5 % = 25 % -> 1,000 元.
    (
        "indicator cap",
        "  caps: {indicators: {availability: 20}}\n",
        [("availability", 30), ("vuln_fix_time", 5)],
        25,
        False,
        1000,
    ),
    # A lower total cap: 30 % + 5 % = 35 % -> capped at 10 % -> 400 元.
    (
        "lower total cap",
        "  caps: {total_percent: 10}\n",
        [("availability", 30), ("vuln_fix_time", 5)],
        10,
        True,
        400,
    ),
]


@pytest.mark.parametrize(
    ("extra", "items", "total", "capped", "amount"),
    [c[1:] for c in CAP_CASES],
    ids=[c[0] for c in CAP_CASES],
)
def test_caps(extra, items, total, capped, amount) -> None:
    cfg = parse_config(f"report:\n  monthly_fee: 4000\n{extra}").report
    d = deductions(OCT, cfg, [ded(k, p) for k, p in items])
    assert d["total_percent"] == total
    assert d["capped"] is capped
    assert d["amount"] == amount
    if capped:
        assert "超过本期扣款上限" in d["summary"]
    if "indicators" in extra:
        item = d["items"][0]
        assert item["capped"] and item["percent"] == 20 and item["uncapped_percent"] == 30
        assert "按上限扣 20%" in item["arithmetic"]


def test_contract_year_periods() -> None:
    start = date(2026, 3, 1)
    cy = contract_year(datetime(2027, 1, 15, tzinfo=CHINA_TZ), start, CHINA_TZ)
    assert (cy.start, cy.end) == (
        datetime(2026, 3, 1, tzinfo=CHINA_TZ),
        datetime(2027, 3, 1, tzinfo=CHINA_TZ),
    )
    assert year("2026", CHINA_TZ, start) == cy
    assert "2026合同年度" in cy.title and "2027年02月28日" in cy.title
    # Unset: the calendar year.
    assert contract_year(datetime(2027, 1, 15, tzinfo=CHINA_TZ), None, CHINA_TZ).label == "2027"


YTD_CASES = [
    # Contract year from 1 March 2026; January 2027 report. Outages: 10 Oct 2026 120 min,
    # 20 Dec 2026 200 min, 12 Jan 2027 30 min. Used 120 + 200 + 30 = 350 min = 5.83 h of
    # 8.76 h; left 8.76 h - 350 min = 31,536 s - 21,000 s = 10,536 s; the month's share 30 min.
    ("2026-03-01", "2027-01", 350, 30),
    # Contract year from 1 January: January 2027 starts a new year: only the 30 min count.
    (None, "2027-01", 30, 30),
    # Contract year from 1 March 2026, December 2026: 120 + 200 = 320 min, month 200.
    ("2026-03-01", "2026-12", 320, 200),
]


@pytest.mark.parametrize(("start", "label", "used_min", "month_min"), YTD_CASES)
def test_year_to_date_across_the_year_boundary(start, label, used_min, month_min) -> None:
    extra = "  step_seconds: 300\n" + (f"  contract_start: {start}\n" if start else "")
    cfg = parse_config(f"report:\n{extra}").report
    prom = FakePrometheus(
        [
            (t(2026, 10, 10, 8), t(2026, 10, 10, 10)),
            (t(2026, 12, 20, 8), t(2026, 12, 20, 11, 20)),
            (t(2027, 1, 12, 9), t(2027, 1, 12, 9, 30)),
        ],
        since=t(2026, 3, 1),
    )
    period = month(label, CHINA_TZ)
    sec, _ = availability_section(period, cfg, HolidayCalendar(), prom)
    w = sec["whole"]
    from sscp_ops.report.availability import Availability

    this = Availability(w["up_seconds"], w["down_seconds"], w["missing_seconds"])
    ytd, annual = year_to_date_section(period, cfg, prom, this)
    assert ytd["used_seconds"] == used_min * 60
    assert ytd["period_seconds"] == month_min * 60
    assert ytd["left_seconds"] == pytest.approx(8.76 * 3600 - used_min * 60)
    assert annual == []  # judged only by the annual report
    assert ytd["note"] == ("" if start else ytd["note"]) and (start or "自然年" in ytd["note"])


def test_annual_report_judges_the_contract_year() -> None:
    # 2026 contract year from 1 March: 120 + 200 + 30 = 350 min <= 8.76 h: passes.
    cfg = parse_config("report:\n  step_seconds: 300\n  contract_start: 2026-03-01\n").report
    prom = FakePrometheus(
        [
            (t(2026, 10, 10, 8), t(2026, 10, 10, 10)),
            (t(2026, 12, 20, 8), t(2026, 12, 20, 11, 20)),
            (t(2027, 1, 12, 9), t(2027, 1, 12, 9, 30)),
        ],
        since=t(2026, 3, 1),
    )
    period = year("2026", CHINA_TZ, date(2026, 3, 1))
    cal = parse_config(
        "calendar:\n  years:\n    2027:\n      holidays:\n"
        "        - {name: 元旦, first: 2027-01-01, last: 2027-01-01}\n"
    ).calendar.build()
    sec, _ = availability_section(period, cfg, cal, prom)
    w = sec["whole"]
    from sscp_ops.report.availability import Availability

    this = Availability(w["up_seconds"], w["down_seconds"], w["missing_seconds"])
    _, (annual,) = year_to_date_section(period, cfg, prom, this)
    assert annual.key == "annual_downtime" and annual.measured == 350 * 60
    assert annual.passed is True and annual.target == "≤ 8.76 小时"


# Late responses: 3 tolerated per contract year (default) or per month; no default amount.
TOLERANCE_CASES = [
    # per contract year: 2 late before this month + 3 now - 3 tolerated = 2 charged.
    ("contract year", 3, 2, None, F(0), 2),
    # the same with an agreed 1 % each: 2 x 1 % = 2 %.
    ("contract year, 1 % each", 3, 2, F(1), F(2), 2),
    # tolerance already used up earlier (5 before): every late one now is charged, 3 x 1 %.
    ("used up", 3, 5, F(1), F(3), 3),
    # per month (before = 0): 3 late - 3 tolerated = 0.
    ("month", 3, 0, F(1), F(0), 0),
]


@pytest.mark.parametrize(
    ("late", "before", "each", "percent", "over"),
    [c[1:] for c in TOLERANCE_CASES],
    ids=[c[0] for c in TOLERANCE_CASES],
)
def test_late_response_tolerance(late, before, each, percent, over) -> None:
    d = count_deduction(late, 3, each, before)
    assert d.percent == percent
    if over:
        assert f"= {over} 次" in d.arithmetic
        assert d.by_contract is (each is None)
        if each is None:
            assert "按合同约定" in d.arithmetic


def test_response_counts_the_contract_year_before_the_month() -> None:
    """ticket_indicators: late responses of earlier months in the contract year use the
    tolerance first (default window contract_year)."""
    from sscp_ops.report.build import ticket_indicators

    def late(n: int, day: datetime) -> Ticket:  # acknowledged after 30 min: late
        return Ticket(
            id=f"INC-{n}",
            kind="incident",
            created=day,
            fired=day,
            acknowledged=day + timedelta(minutes=30),
            resolved=day + timedelta(hours=1),
        )

    sept = [late(i, datetime(2026, 9, 1 + i, 10, tzinfo=CHINA_TZ)) for i in range(2)]
    octo = [late(10 + i, datetime(2026, 10, 10 + i, 10, tzinfo=CHINA_TZ)) for i in range(2)]
    cfg = parse_config("report:\n  contract_start: 2026-03-01\n").report
    response = ticket_indicators(OCT, cfg, sept + octo, "e")[0]
    # 2 before + 2 now - 3 tolerated = 1 charged; no agreed amount: 按合同约定.
    assert response.deduction.percent == 0 and response.deduction.by_contract
    assert "= 1 次" in response.deduction.arithmetic
    assert "合同年度此前超时 2 次" in response.measured_text
    monthly = parse_config("report:\n  response: {tolerance_window: month}\n").report
    assert ticket_indicators(OCT, monthly, sept + octo, "e")[0].deduction.arithmetic == ""


def test_2027_is_unknown_and_warned_not_a_crash() -> None:
    """chinese-calendar knows up to 2026 (its 2027 data comes with the State Council notice):
    January 2027 is computed, every minute on the normal scale, with a warning."""
    jan = month("2027-01", CHINA_TZ)
    sec, (normal, holiday) = section("", [(t(2027, 1, 1, 10), t(2027, 1, 1, 11))], period=jan)
    assert sec["calendar_unknown_years"] == [2027]
    assert "2027年" in sec["warnings"][0]
    assert holiday.passed is None and holiday.measured_text == "节假日安排未知"
    # 60 down of 44,640 min = 99.8656 %: 0.0344 % short = 0.344 step -> floor 0 %.
    assert normal.deduction.percent == 0 and sec["normal"]["down_seconds"] == 3600


def test_2027_configured_override_is_used() -> None:
    cal = parse_config(
        "calendar:\n  years:\n    2027:\n      holidays:\n"
        "        - {name: 元旦, first: 2027-01-01, last: 2027-01-01}\n"
    ).calendar.build()
    jan = month("2027-01", CHINA_TZ)
    sec, (normal, holiday) = section(
        "", [(t(2027, 1, 1, 10), t(2027, 1, 1, 11))], period=jan, calendar=cal
    )
    assert sec["warnings"] == []
    # 1 Jan: 1,380 / 1,440 = 95.833 %: 4.066 % short = 4.066 steps of 1 % -> floor 4 %.
    assert holiday.deduction.percent == 4
    assert normal.measured == 1

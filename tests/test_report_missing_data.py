"""Issue 16 item 12: missing data must not flatter availability.

Table-driven arithmetic (worked by hand in the rows) and the backfilled October of
tests/fx_report.py: ``home`` has no samples on 20 Oct 00:00-02:00 (115 min missing after the
5 min look-back), and the platform's host web1:9100 was down 01:00-02:00 of it.
"""

from __future__ import annotations

from fractions import Fraction

import fx_report as fx
import pytest

from sscp_ops.config import parse_config
from sscp_ops.holiday_calendar import CHINA_TZ
from sscp_ops.report import availability as av
from sscp_ops.report.build import availability_section
from sscp_ops.report.period import month
from sscp_ops.report.sources import HttpPrometheus

U, D, M = av.UP, av.DOWN, av.MISSING
OCT = month("2026-10", CHINA_TZ)


@pytest.mark.parametrize(
    ("platform", "host", "setting", "expected", "ratio"),
    [
        # host down during the last 2 missing steps: they count as down -> 2 up / 5 known
        ([U, U, M, M, M], [U, U, U, D, D], "unavailable", [U, U, M, D, D], Fraction(2, 4)),
        # the same, excluded: 2 up / 2 known = 100 %, 3 steps missing and flagged
        ([U, U, M, M, M], [U, U, U, D, D], "excluded", [U, U, M, M, M], Fraction(1)),
        # host unknown (no platform_hosts): nothing changes
        ([U, D, M, M], None, "unavailable", [U, D, M, M], Fraction(1, 2)),
        # host down while the probes still report: the probes' result stands
        ([U, U, D, U], [U, D, D, D], "unavailable", [U, U, D, U], Fraction(3, 4)),
        # host data missing too: still missing, never up
        ([M, U], [M, U], "unavailable", [M, U], Fraction(1)),
    ],
)
def test_count_missing(platform, host, setting, expected, ratio) -> None:
    grid = av.Grid(0, len(platform) * 60, 60)
    got = av.count_missing(platform, host, setting)
    assert got == expected
    assert av.summarise(got, grid).ratio == ratio


def _section(report_prometheus: str, extra: str = ""):
    cfg = parse_config(f"report:\n  monthly_fee: 4000\n{extra}")
    return availability_section(
        OCT, cfg.report, cfg.calendar.build(), HttpPrometheus(report_prometheus)
    )


@pytest.mark.slow
def test_default_without_platform_hosts_excludes_and_flags(report_prometheus: str) -> None:
    section, (normal, _) = _section(report_prometheus)
    md = section["missing_data"]
    # 115 min of 44,640 = 0.2576 % missing, more than the default 0.1 %: 证据不足
    assert md["seconds"] == fx.MISSING_MINUTES * 60
    assert md["share"] == pytest.approx(115 / 44640)
    assert md["insufficient_evidence"] is True
    assert md["host_down_counted_unavailable_seconds"] == 0
    assert any("证据不足" in w for w in section["warnings"])
    assert "证据不足" in normal.evidence
    assert section["whole"]["down_seconds"] == fx.DOWN_MINUTES * 60  # unchanged: 200 min


@pytest.mark.slow
def test_missing_while_the_platform_host_was_down_is_unavailable(report_prometheus: str) -> None:
    section, (normal, _) = _section(
        report_prometheus, '  missing_data: {platform_hosts: ["web1:9100"]}\n'
    )
    md = section["missing_data"]
    # 20 Oct 01:00-02:00: home without data and web1 down: 60 min down; 00:05-01:00 stays
    # missing (55 min, host up: excluded and flagged).
    assert md["host_down_counted_unavailable_seconds"] == 60 * 60
    w = section["whole"]
    assert (w["down_seconds"], w["missing_seconds"]) == (260 * 60, 55 * 60)
    # Non-holiday time: 34,560 min, 55 missing, 50 + 60 down: 34,395 / 34,505 = 99.6812 %;
    # 0.2188 % below 99.9 % = 2.188 steps of 0.1 %, whole steps: 2 % (excluded: 0 %).
    n = section["normal"]
    assert (n["up_seconds"], n["down_seconds"]) == (34395 * 60, 110 * 60)
    assert normal.measured == pytest.approx(34395 / 34505)
    assert normal.deduction.percent == 2
    # 55 / 44,640 = 0.1232 % still above 0.1 %
    assert md["insufficient_evidence"] is True


@pytest.mark.slow
def test_share_under_the_limit_is_not_flagged(report_prometheus: str) -> None:
    section, (normal, _) = _section(report_prometheus, "  missing_data: {max_share: 0.003}\n")
    assert section["missing_data"]["insufficient_evidence"] is False
    assert not any("证据不足" in w for w in section["warnings"])
    assert "证据不足" not in normal.evidence


@pytest.mark.slow
def test_excluded_setting_keeps_the_host_down_time_missing(report_prometheus: str) -> None:
    section, _ = _section(
        report_prometheus,
        '  missing_data: {platform_hosts: ["web1:9100"], when_host_down: excluded}\n',
    )
    w = section["whole"]
    assert (w["down_seconds"], w["missing_seconds"]) == (200 * 60, 115 * 60)

"""Deduction arithmetic, table-driven with the contract's examples (docs/sla.md)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from sscp_ops.report.penalty import (
    count_deduction,
    flat_deduction,
    frac,
    late_days_deduction,
    money,
    shortfall_deduction,
)

F = Fraction
T, STEP, HSTEP = frac("0.999"), frac("0.001"), frac("0.01")


@pytest.mark.parametrize(
    ("measured", "step", "rounding", "percent"),
    [
        # whole period: 1 % per 0.1 % below 99.9 %
        ("0.999", STEP, "ceil", 0),  # on target: nothing
        ("0.9995", STEP, "ceil", 0),
        ("0.9985", STEP, "ceil", 1),  # 0.05 % short: a started step counts
        ("0.9985", STEP, "floor", 0),  # ... or not, when configured
        ("0.9985", STEP, "linear", F(1, 2)),
        ("0.998", STEP, "ceil", 1),  # exactly one step: 1 %, not 2 (no float drift)
        ("0.998", STEP, "floor", 1),
        ("0.9975", STEP, "ceil", 2),
        ("0.99", STEP, "ceil", 9),  # 0.9 % short = 9 steps
        # 120 of 44,640 minutes down (October): 99.7312 %, 0.1688 % short
        (F(44640 - 120, 44640), STEP, "ceil", 2),
        (F(44640 - 120, 44640), STEP, "floor", 1),
        # holidays: 1 % per 1 % below 99.9 %
        ("0.995", HSTEP, "ceil", 1),
        ("0.989", HSTEP, "ceil", 1),  # exactly 1 % short
        ("0.988", HSTEP, "ceil", 2),
        ("0.988", HSTEP, "floor", 1),
        # 150 of 10,080 holiday minutes down (国庆 7 days): 98.512 %, 1.388 % short
        (F(10080 - 150, 10080), HSTEP, "ceil", 2),
    ],
)
def test_availability_shortfall(measured, step, rounding, percent) -> None:
    d = shortfall_deduction(frac(measured), T, step, F(1), rounding)
    assert d.percent == percent
    if percent:
        assert d.arithmetic.endswith(f"扣 {float(percent):g}%")
    else:
        assert d.arithmetic == "" or rounding == "floor"


def test_arithmetic_is_spelled_out() -> None:
    d = shortfall_deduction(frac("0.9975"), T, STEP, F(1), "ceil")
    assert d.arithmetic == (
        "低于目标 99.9% − 99.75% = 0.15%；0.15% ÷ 0.1% = 1.5 档（不足一档按一档计，计 2 档）"
        "× 1% = 扣 2%"
    )


@pytest.mark.parametrize(
    ("late", "tolerated", "each", "percent"),
    [(0, 3, 1, 0), (3, 3, 1, 0), (4, 3, 1, 1), (6, 3, 1, 3), (6, 3, "0.5", F(3, 2))],
)
def test_response_count(late, tolerated, each, percent) -> None:
    d = count_deduction(late, tolerated, frac(each))
    assert d.percent == percent
    if percent:
        assert f"({late} − 容许 {tolerated})" in d.arithmetic


H = 3600


@pytest.mark.parametrize(
    ("late_seconds", "percent"),
    [
        ([], 0),
        ([0], 0),  # fixed at exactly 48 h: on time
        ([1], 2),  # one second late: a started day
        ([24 * H], 2),
        ([24 * H + 1], 4),
        ([1 * H, 50 * H], 2 + 6),  # two vulnerabilities: 1 day + 3 days
    ],
)
def test_vulnerability_days_late(late_seconds, percent) -> None:
    d = late_days_deduction(late_seconds, F(2))
    assert d.percent == percent


def test_flat_and_money() -> None:
    assert flat_deduction(True, None).percent == 0  # the contract names no amount
    assert flat_deduction(False, F(5)).percent == 0
    assert flat_deduction(True, F(5)).percent == 5
    assert money(F(3), frac("100000")) == 3000
    assert money(F(3), None) is None

"""Deduction arithmetic, exact (fractions) so a boundary never flips on a float's last bit.

Each function returns a :class:`Deduction`: the percentage of the period's service fee and the
arithmetic written out in Chinese, shown in the report beside the indicator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

#: How a part of a step counts (a reading of the contract, docs/sla.md): ``floor`` only full
#: steps (the default), ``ceil`` a started step counts, ``linear`` in proportion.
Rounding = Literal["floor", "ceil", "linear"]


def frac(value: float | int | str | Fraction) -> Fraction:
    """An exact fraction of a config number (``0.999`` means 999/1000, not the float's bits)."""
    if isinstance(value, Fraction):
        return value
    return Fraction(str(value))


def _trim(text: str) -> str:
    """Drop a fraction's trailing zeros: ``99.900`` -> ``99.9``, ``100`` stays ``100``."""
    return text.rstrip("0").rstrip(".") if "." in text else text


def pct(value: Fraction | float, digits: int = 3) -> str:
    """A ratio as a percentage for people: 0.99888 -> ``99.888%`` (trailing zeros dropped)."""
    return f"{_trim(f'{float(value) * 100:.{digits}f}')}%"


def num(value: Fraction | float, digits: int = 2) -> str:
    return _trim(f"{float(value):.{digits}f}")


@dataclass(frozen=True)
class Deduction:
    percent: Fraction
    arithmetic: str
    #: Charged, but the amount is the contract's (按合同约定), not a configured percent.
    by_contract: bool = False

    @property
    def value(self) -> float:
        return float(self.percent)


NONE = Deduction(Fraction(0), "")


def _units(ratio: Fraction, rounding: Rounding) -> Fraction:
    if rounding == "ceil":
        return Fraction(math.ceil(ratio))
    if rounding == "floor":
        return Fraction(math.floor(ratio))
    return ratio


_ROUNDING_TEXT = {
    "floor": "按整档计，不足一档不计",
    "ceil": "不足一档按一档计",
    "linear": "按比例计",
}


def shortfall_deduction(
    measured: Fraction,
    target: Fraction,
    step: Fraction,
    percent_per_step: Fraction,
    rounding: Rounding = "floor",
) -> Deduction:
    """``percent_per_step`` for every ``step`` (or part, per ``rounding``) below ``target``.

    The contract: 每低0.1%扣款1% (holidays: 节假日每低1%扣款1%); how a part of a step counts
    is the setting ``rounding``, printed in the arithmetic.
    """
    if measured >= target:
        return NONE
    short = target - measured
    units = _units(short / step, rounding)
    percent = units * percent_per_step
    text = (
        f"低于目标 {pct(target)} − {pct(measured, 4)} = {pct(short, 4)}；"
        f"{pct(short, 4)} ÷ {pct(step)} = {num(short / step, 3)} 档"
        f"（{_ROUNDING_TEXT[rounding]}，计 {num(units, 3)} 档）× {num(percent_per_step)}% "
        f"= 扣 {num(percent, 3)}%"
    )
    return Deduction(percent, text)


def count_deduction(
    count: int, tolerated: int, percent_each: Fraction | None, before: int = 0
) -> Deduction:
    """``percent_each`` per occurrence beyond the ``tolerated`` ones (fault response > 15 min).

    ``before`` occurrences earlier in the same tolerance window (the contract year to date)
    used the tolerance first and were charged in their own reports. Without ``percent_each``
    (the contract says only 按次扣款) the count is shown and the amount is 按合同约定.
    """
    over = max(0, before + count - tolerated) - max(0, before - tolerated)
    if over <= 0:
        return NONE
    if before:
        already = max(0, before - tolerated)
        counted = f"(此前 {before} + 本期 {count} − 容许 {tolerated}) − 此前已超 {already}"
    else:
        counted = f"({count} − 容许 {tolerated})"
    if percent_each is None:
        return Deduction(Fraction(0), f"{counted} = {over} 次，按次扣款，金额按合同约定", True)
    percent = over * percent_each
    text = f"{counted} = {over} 次 × {num(percent_each)}% = 扣 {num(percent)}%"
    return Deduction(percent, text)


def late_days_deduction(late_seconds: list[float], percent_per_day: Fraction) -> Deduction:
    """``percent_per_day`` per started day late, summed over items (vulnerability fixes)."""
    days = [math.ceil(s / 86400) for s in late_seconds if s > 0]
    if not days:
        return NONE
    total = sum(days)
    percent = total * percent_per_day
    parts = " + ".join(str(d) for d in days)
    text = (
        f"逾期 {parts} = {total} 天（不足一天按一天计）"
        f"× {num(percent_per_day)}% = 扣 {num(percent)}%"
    )
    return Deduction(percent, text)


def flat_deduction(failed: bool, percent: Fraction | None) -> Deduction:
    """A fixed deduction when an indicator fails (where the contract names one)."""
    if not failed or not percent:
        return NONE
    return Deduction(percent, f"未达标，按合同扣 {num(percent)}%")


@dataclass(frozen=True)
class Capped:
    """A deduction after its cap: ``applied`` is what is charged, ``cap`` the cap that bit."""

    deduction: Deduction
    applied: Fraction
    cap: Fraction | None

    @property
    def text(self) -> str:
        if self.cap is None:
            return self.deduction.arithmetic
        return (
            f"{self.deduction.arithmetic}；超过本项上限 {num(self.cap)}%，"
            f"按上限扣 {num(self.applied)}%"
        )


def cap(deduction: Deduction, limit: Fraction | None) -> Capped:
    """The deduction limited to ``limit`` percent (``None``: no cap)."""
    if limit is not None and deduction.percent > limit:
        return Capped(deduction, limit, limit)
    return Capped(deduction, deduction.percent, None)


def money(percent: Fraction, fee: Fraction | None) -> Fraction | None:
    return None if fee is None else percent / 100 * fee

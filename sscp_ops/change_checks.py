"""Journey results recorded on a change (接口兼容性测试记录): one line each in the change's
``verification`` text.

``sscp-ops journeys run --change-id N`` appends a line per journey (:func:`format_check`);
the monthly report reads the changes through the ticket API and lists the lines
(:func:`parse_checks`). Other lines of the verification text (written by people) are kept
and ignored::

    [接口兼容性测试] 2026-03-02T01:30:05Z inspection-form 通过 7/7 步 1.23 秒
    [接口兼容性测试] 2026-03-02T01:41:10Z inspection-form 未通过 2/7 步 0.31 秒 失败步骤："登录"
        status 200, expected 302         <- one line in the text, wrapped here
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

TAG = "[接口兼容性测试]"
_LINE = re.compile(
    re.escape(TAG) + r" (?P<at>\S+) (?P<journey>\S+) (?P<result>通过|未通过)"
    r" (?P<passed>\d+)/(?P<total>\d+) 步 (?P<seconds>\d+(?:\.\d+)?) 秒"
    r'(?: 失败步骤："(?P<step>[^"]+)"(?: (?P<reason>.*))?)?$'
)
MAX_REASON = 200


@dataclass(frozen=True)
class JourneyCheck:
    at: datetime
    journey: str
    passed: bool
    steps_passed: int
    steps_total: int
    seconds: float
    failed_step: str = ""
    reason: str = ""


def format_check(check: JourneyCheck) -> str:
    at = check.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = (
        f"{TAG} {at} {check.journey} {'通过' if check.passed else '未通过'} "
        f"{check.steps_passed}/{check.steps_total} 步 {check.seconds:.2f} 秒"
    )
    if check.failed_step:
        reason = " ".join(check.reason.split())[:MAX_REASON]
        # a step name never holds '"' (sscp_ops.config.journeys.StepName)
        line += f' 失败步骤："{check.failed_step}" {reason}'
    return line


def parse_checks(text: str | None) -> list[JourneyCheck]:
    """The journey lines of a verification text, in their order; other lines are skipped."""
    out = []
    for line in (text or "").splitlines():
        match = _LINE.match(line.strip())
        if match is None:
            continue
        try:
            at = datetime.strptime(match["at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            continue
        out.append(
            JourneyCheck(
                at=at,
                journey=match["journey"],
                passed=match["result"] == "通过",
                steps_passed=int(match["passed"]),
                steps_total=int(match["total"]),
                seconds=float(match["seconds"]),
                failed_step=match["step"] or "",
                reason=match["reason"] or "",
            )
        )
    return out

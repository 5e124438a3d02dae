"""What the release gate makes of journey results: a table, JUnit XML, a change record."""

from __future__ import annotations

import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime

from sscp_ops.change_checks import JourneyCheck
from sscp_ops.journeys.runner import JourneyResult

_STATUS = {"passed": "ok", "failed": "FAIL", "skipped": "skip"}


def _width(text: str) -> int:
    """Terminal columns of ``text`` (CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def table(results: Sequence[JourneyResult]) -> str:
    """One row per step (journey, step, status, HTTP status, time, reason) and a total per
    journey, aligned for a terminal."""
    rows = [("JOURNEY", "STEP", "STATUS", "HTTP", "TIME", "REASON")]
    for result in results:
        for step in result.steps:
            rows.append(
                (
                    result.journey,
                    step.name,
                    _STATUS[step.status],
                    str(step.http_status or "-"),
                    f"{step.seconds:.3f}s" if step.status != "skipped" else "-",
                    step.reason,
                )
            )
        passed = sum(s.status == "passed" for s in result.steps)
        verdict = "PASSED" if result.success else "FAILED"
        rows.append(
            (
                result.journey,
                f"= {passed}/{len(result.steps)} steps",
                verdict,
                "",
                f"{result.seconds:.3f}s",
                "",
            )
        )
    widths = [max(_width(row[i]) for row in rows) for i in range(5)]
    lines = []
    for row in rows:
        cells = [_pad(cell, widths[i]) for i, cell in enumerate(row[:5])]
        lines.append("  ".join([*cells, row[5]]).rstrip())
    return "\n".join(lines) + "\n"


def junit_xml(results: Sequence[JourneyResult]) -> bytes:
    """JUnit XML: a ``testsuite`` per journey, a ``testcase`` per step (``failure`` with the
    reason, ``skipped`` after a failure)."""
    suites = ET.Element("testsuites", name="sscp-ops journeys")
    for result in results:
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=result.journey,
            tests=str(len(result.steps)),
            failures=str(sum(s.status == "failed" for s in result.steps)),
            skipped=str(sum(s.status == "skipped" for s in result.steps)),
            errors="0",
            time=f"{result.seconds:.3f}",
            timestamp=datetime.fromtimestamp(result.started, UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        )
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="run_id", value=result.run_id)
        for step in result.steps:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"journeys.{result.journey}",
                name=step.name,
                time=f"{step.seconds:.3f}",
            )
            if step.status == "failed":
                failure = ET.SubElement(case, "failure", message=step.reason, type="StepFailed")
                failure.text = f"HTTP {step.http_status or '-'}: {step.reason}"
            elif step.status == "skipped":
                ET.SubElement(case, "skipped", message=step.reason)
    ET.indent(suites)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True) + b"\n"


def change_check(result: JourneyResult) -> JourneyCheck:
    """The line recorded on the change ticket (:mod:`sscp_ops.change_checks`)."""
    failed = result.failed_step
    return JourneyCheck(
        at=datetime.fromtimestamp(result.started, UTC),
        journey=result.journey,
        passed=result.success,
        steps_passed=sum(s.status == "passed" for s in result.steps),
        steps_total=len(result.steps),
        seconds=result.seconds,
        failed_step=failed.name if failed else "",
        reason=failed.reason if failed else "",
    )

"""``sscp-ops journeys run`` as the release gate: table, exit code, JUnit XML, the record on
the change ticket (real webhook API), and what the monthly report makes of that record."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from fx_journeys import PASSWORD, journey_yaml
from helpers import sscp_ops_cmd

from sscp_ops.change_checks import JourneyCheck, format_check, parse_checks
from sscp_ops.report.sources import SourceError

pytestmark = pytest.mark.slow


def _gate(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        sscp_ops_cmd("journeys", "run", *args), capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def journeys_config(platform, probe_password, write_config):
    def make(extra: str = "") -> str:
        text = "journeys:\n" + journey_yaml(platform.base, probe_password)
        text += journey_yaml(platform.base, probe_password, name="second")
        return str(write_config(extra + text, "journeys.yml"))

    return make


def _rows(stdout: str) -> list[list[str]]:
    return [line.split() for line in stdout.splitlines()[1:]]


def test_gate_passes_a_healthy_platform_and_writes_junit(journeys_config, tmp_path) -> None:
    junit = tmp_path / "junit.xml"
    done = _gate("--config.file", journeys_config(), "--junit", str(junit))

    assert done.returncode == 0, done.stderr
    rows = _rows(done.stdout)
    assert [r[2] for r in rows if r[0] == "inspection-form"][:7] == ["ok"] * 7
    assert rows[7][:5] == ["inspection-form", "=", "7/7", "steps", "PASSED"]
    suites = ET.parse(junit).getroot()
    assert [s.get("name") for s in suites] == ["inspection-form", "second"]
    cases = suites.findall("./testsuite/testcase")
    assert len(cases) == 14 and not suites.findall(".//failure")
    assert PASSWORD not in done.stdout + done.stderr + junit.read_text()


def test_gate_fails_on_a_broken_upgrade_naming_the_step(
    platform, journeys_config, tmp_path
) -> None:
    platform.upgrade("slow_search")
    junit = tmp_path / "junit.xml"
    done = _gate("--config.file", journeys_config(), "--journey", "second", "--junit", str(junit))

    assert done.returncode == 1, done.stderr
    rows = _rows(done.stdout)
    assert {r[0] for r in rows} == {"second"}  # --journey picks one
    failed = [r for r in rows if r[2] == "FAIL"]
    assert len(failed) == 1 and failed[0][1] == "企业查询" and failed[0][3] == "200"
    assert "over the 2 s limit" in " ".join(failed[0])
    assert [r[2] for r in rows].count("skip") == 4  # 3 steps after it, and the clean-up
    failures = ET.parse(junit).getroot().findall(".//testcase/failure/..")
    assert [c.get("name") for c in failures] == ["企业查询"]
    assert "over the 2 s limit" in failures[0].find("failure").get("message")


def test_gate_refuses_a_bad_config_or_journey_name(journeys_config, write_config) -> None:
    bad = write_config(
        "journeys:\n  - name: j\n    steps:\n      - name: a\n"
        '        request: {url: "http://x/{csrf}"}\n',
        "bad.yml",
    )
    done = _gate("--config.file", str(bad))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"sscp-ops journeys: config error: {bad}:3: journeys[0].steps: "
        "step 'a' uses {csrf}, which no earlier step extracts"
    )
    done = _gate("--config.file", journeys_config(), "--journey", "nope")
    assert done.returncode == 2 and "unknown journey 'nope'" in done.stderr


def test_change_id_records_the_result_on_the_change(
    platform, journeys_config, live_webhook, tmp_path
) -> None:
    from sscp_ops.report.sources import HttpTicketSource

    store = live_webhook.services.store
    change = store.create_change(
        {"title": "平台 v2.3 升级", "reason": "补丁", "verification": "人工检查首页正常"}, "ops"
    )
    token = tmp_path / "operator.token"
    token.write_text(live_webhook.token("operator", "journeys") + "\n")
    config = journeys_config(f"report: {{tickets: {{url: {live_webhook.url}}}}}\n")

    cid = str(change["id"])
    ok = _gate("--config.file", config, "--change-id", cid, "--token-file", str(token))
    assert ok.returncode == 0, ok.stderr
    assert f"recorded on change {change['id']}" in ok.stdout
    platform.upgrade("renamed_field")
    bad = _gate(
        "--config.file", config, "--journey", "second", "--change-id", str(change["id"]),
        "--token-file", str(token),
    )  # fmt: skip
    assert bad.returncode == 1, bad.stderr

    text = next(c for c in store.list_changes() if c["id"] == change["id"])["verification"]
    assert text.splitlines()[0] == "人工检查首页正常"  # what people wrote stays
    checks = parse_checks(text)
    assert [(c.journey, c.passed, c.failed_step) for c in checks] == [
        ("inspection-form", True, ""),
        ("second", True, ""),
        ("second", False, "登录"),
    ]
    assert checks[2].reason == "status 200, expected 302"
    assert (checks[0].steps_passed, checks[0].steps_total) == (7, 7)
    assert (checks[2].steps_passed, checks[2].steps_total) == (1, 7)

    # The monthly report reads them back through the same API client.
    viewer = live_webhook.token("viewer", "monthly-report")
    now = datetime.now(UTC)
    source = HttpTicketSource(live_webhook.url, viewer)
    got = source.tickets(now - timedelta(days=1), now + timedelta(days=1))
    recorded = [t for t in got if t.kind == "change"]
    assert len(recorded) == 1 and parse_checks(recorded[0].verification) == checks
    html = _monthly_report_html(store.clock(), source)
    assert "接口兼容性测试记录（3 次）" in html
    assert html.count("<td>inspection-form</td>") == 1 and html.count("<td>second</td>") == 2
    assert html.count("<td>未通过</td>") == 1 and "<td>登录</td>" in html

    # A viewer token may not write: the gate says so and exits 1.
    token.write_text(viewer)
    denied = _gate("--config.file", config, "--journey", "second", "--change-id",
                   str(change["id"]), "--token-file", str(token))  # fmt: skip
    assert denied.returncode == 1
    assert f"result not recorded on change {change['id']}" in denied.stderr
    assert "HTTP 403" in denied.stderr
    unknown = _gate("--config.file", config, "--journey", "second", "--change-id", "999",
                    "--token-file", str(tmp_path / "operator.token"))  # fmt: skip
    assert unknown.returncode == 1 and "no change 999" in unknown.stderr


class _NoPrometheus:
    def query_range(self, *args):
        raise SourceError("no prometheus in this test")

    query = query_range


def _monthly_report_html(at: datetime, tickets) -> str:
    """The monthly report of the month holding ``at``, tickets from ``tickets`` only."""
    from sscp_ops.config import Config
    from sscp_ops.holiday_calendar import CHINA_TZ
    from sscp_ops.report.build import Sources, build_report
    from sscp_ops.report.period import month
    from sscp_ops.report.render import render_html

    local = at.astimezone(CHINA_TZ)
    period = month(f"{local.year}-{local.month:02d}", CHINA_TZ)
    config = Config()
    report = build_report(
        period, config.report, config.calendar.build(), Sources(_NoPrometheus(), tickets), at
    )
    assert len(report["tickets"]["journey_checks"]) == 3
    return render_html(report, CHINA_TZ)


def test_change_check_lines_round_trip_and_ignore_other_text() -> None:
    at = datetime(2026, 3, 2, 1, 30, 5, tzinfo=UTC)
    passed = JourneyCheck(at, "inspection-form", True, 7, 7, 1.234)
    failed = JourneyCheck(
        at, "b", False, 2, 7, 0.31, "企业查询（新）", "took 2.31 s,\nover the 2 s limit"
    )
    lines = ["人工验证通过", format_check(passed), "", format_check(failed), "[接口兼容性测试] x"]
    text = "\n".join(lines)
    got = parse_checks(text)
    assert got[0] == JourneyCheck(at, "inspection-form", True, 7, 7, 1.23)
    assert got[1].failed_step == "企业查询（新）"
    assert got[1].reason == "took 2.31 s, over the 2 s limit"
    assert len(got) == 2
